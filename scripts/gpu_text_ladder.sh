#!/usr/bin/env bash
# The GPU part of the fine-tuning ladder (issue 28): d_model 128 .. 1024 on one GPU, from the
# source tree (PYTHONPATH=., nothing installed), in at most two calls of 8 minutes each.
#
#     bash scripts/gpu_text_ladder.sh OUT [PREVIOUS ...]
#
# OUT receives a compact result: summary.md, summary.json, records.json (every finished run),
# the four figures and log.txt: 8 files, each well under 16 MiB. A call stops itself before
# LADDER_TIME_LIMIT seconds of runs (default 390) and keeps every finished run; the next call
# resumes: from the work folder (LADDER_WORK, default runs/gpu-ladder: parts and bases, kept
# while the machine stays warm) and from OUT/records.json and each PREVIOUS folder's
# records.json (a fresh machine: copy the first call's records.json into the tree and name its
# folder). Bases are pretrained on the GPU where the work folder has none (about 15 s each).
#
# The plan, widest first (what is cut when time runs out is the last of it):
#   Init[1] at d_model 1024, 512, 256, 128, then the 64-token control at 128 (call 1 should
#   reach it), then Init[2] at 1024, 512, 256, 128 (call 2, as far as it gets).
# Sizes (scripts/README: sized from /work/shared/gpu-runs/2026-12-04/tinylm_step.txt, 14-20 ms
# a fine-tuning step at every d_model 128..2048 unstacked): see docs/results/finetune-ladder.
#
# LADDER_REHEARSAL=1 runs the same script on the CPU at tiny sizes (--fast, numpy): the stop at
# the time limit, the resume, the files in OUT. Exit status: 0 finished, 3 stopped at the time
# limit (call it again), anything else a failure (see OUT/log.txt).
set -u
cd "$(dirname "$0")/.."
OUT=${1:?usage: bash scripts/gpu_text_ladder.sh OUT [PREVIOUS_RESULT_FOLDER ...]}
shift
PY=${PYTHON:-python3}
WORK=${LADDER_WORK:-runs/gpu-ladder}
LIMIT=${LADDER_TIME_LIMIT:-390}
export PYTHONPATH=".${PYTHONPATH:+:$PYTHONPATH}" MPLBACKEND=Agg TQDM_DISABLE=1 PYTHONUNBUFFERED=1
export TINYLORA_CACHE="$WORK/bases"
mkdir -p "$OUT" "$WORK"
LOG="$OUT/log.txt"
: >> "$LOG"
say() { echo "$@" | tee -a "$LOG"; }

PREVIOUS=()
for folder in "$OUT" "$@"; do
  [ -f "$folder/records.json" ] && PREVIOUS+=("$folder/records.json")
done
if [ "${LADDER_REHEARSAL:-0}" = "1" ]; then
  SIZE=(--fast --backend numpy --max-stack 8)
  INITS=(--inits zero_B zero_A)
else
  SIZE=(--widths 1024 512 256 128 --steps 400 --backend cupy --max-stack 48)
  INITS=(--inits zero_B zero_A)
fi
say "# tinylora finetune-ladder on $(hostname), $(date -u +%Y-%m-%dT%H:%MZ), limit ${LIMIT} s"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader >> "$LOG" 2>&1
start=$(date +%s)
$PY -m tinylora finetune-ladder "${SIZE[@]}" "${INITS[@]}" --out "$WORK" \
    --time-limit "$LIMIT" --no-progress ${PREVIOUS[@]:+--records-in "${PREVIOUS[@]}"} \
    > "$WORK/ladder.log" 2>&1
status=$?
tail -n 60 "$WORK/ladder.log" >> "$LOG"
say "finetune-ladder: exit $status ($(( $(date +%s) - start )) s; 3 = stopped at the limit)"
for f in summary.md summary.json records.json ladder_gain_by_ratio.png \
         ladder_best_ratio_by_width.png ladder_lr_lattices.png ladder_curves.png; do
  [ -f "$WORK/$f" ] && cp "$WORK/$f" "$OUT/$f"
done
ls -la "$OUT" | tee -a "$LOG"
exit $status

#!/usr/bin/env bash
# The GPU part of the fine-tuning ladder: d_model 128 .. 1024 on one GPU, from the
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
# The plan, in this order (what a time limit cuts is the last of it): Init[1] at d_model 1024,
# 512, 256, 128, then the 64-token control at 128, then Init[2] at 1024, 512, 256, 128. Same
# protocol as the CPU part (300 steps, cosine), with the issue's ratios 1..64 and 8 evaluation
# seeds. Sized from docs/results/gpu-2026-12-04/tinylm_step.txt (a fine-tuning step
# 14-20 ms at every d_model 128..2048, unstacked; pretraining 24 ms at 1024, 47 ms at 2048):
# a stacked copy costs about 4 ms a step at 1024 and 1 ms at 512 (the arithmetic), while 128 and
# 256 stay at the launch floor per pass; about 170 runs a chain put Init[1] and the control near
# 8 minutes of runs, the two calls' budget, and Init[2] gets what is left (see
# docs/results/finetune-ladder/README.md for the arithmetic and what was cut).
#
# LADDER_REHEARSAL=1 runs the same script on the CPU at tiny sizes (--fast, numpy): the stop at
# the time limit, the resume, the files in OUT; LADDER_EXTRA adds options (the tests shrink the
# rehearsal further with it). Exit status: 0 finished, 3 stopped at the time limit (call it
# again), anything else a failure (see OUT/log.txt).
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
  INITS=(--init both)
else
  SIZE=(--widths 1024 512 256 128 --steps 300 --lr-ratios 1 2 4 8 16 32 64
        --eval-seeds 2 3 4 5 6 7 8 9 --backend cupy --max-stack 48)
  INITS=(--init both)
fi
say "# tinylora finetune-ladder on $(hostname), $(date -u +%Y-%m-%dT%H:%MZ), limit ${LIMIT} s"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader >> "$LOG" 2>&1
start=$(date +%s)
# shellcheck disable=SC2206  # LADDER_EXTRA is a list of options, split on purpose
EXTRA=(${LADDER_EXTRA:-})
$PY -m tinylora.run finetune-ladder "${SIZE[@]}" "${INITS[@]}" ${EXTRA[@]+"${EXTRA[@]}"} --out "$WORK" \
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

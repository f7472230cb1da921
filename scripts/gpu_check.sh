#!/usr/bin/env bash
# Every GPU check of tinylora in one prepared run, from the source tree (no install needed):
#
#     bash scripts/gpu_check.sh              # on the GPU machine: within 8 minutes on an H200
#     bash scripts/gpu_check.sh --rehearse   # on a CPU: every stage on NumPy at tiny sizes
#
# Writes into $OUT (default gpu-check-out/) summary.md (as it goes), bench_gpu.json,
# gradcheck.json and logs.tar.gz (every stage's full log): few files, as a device tool that
# brings back at most 8 wants. Stages, each with its
# own time limit (445 s in all, under 8 minutes; a stage stopped at its limit says so, keeps
# what it finished, and the rest still run):
#  1. versions and the device;
#  2. the gpu-marked tests (NumPy/CuPy parity, every CUDA kernel of tinylora/fast/cuda.py against
#     its reference, a fast step against the reference, a refused step, a CUDA-graph capture);
#  3. `tinylora gradcheck` on the backend;
#  4. scripts/gpu_bench.py: the mlp, block and TinyLM steps against PyTorch eager, the floor, the
#     reference, a CUDA-graph replay, and the parts of each step (host against device time);
#  5. the widest sweeps in about a minute each: the analytic toy to 2^20, the width sweep to
#     2^14, the balanced rates to 2^14;
#  6. a planted out-of-memory: a width too large for the card (CuPy's pool limited to 512 MiB:
#     width 16384's 1 GiB weight), which must end in one line naming the width and the memory,
#     the finished widths kept (rehearsal: the host's address space capped by ulimit -v);
#  7. lesson 7 run as a script: its GPU claims are asserts.
# On a machine without CuPy or a GPU (and without --rehearse) it says so, shows the gpu tests
# skipped, and exits 0.
set -u
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
case $PY in */*) PY="$(cd "$(dirname "$PY")" && pwd)/$(basename "$PY")";; esac  # for `cd lessons`
OUT=${OUT:-gpu-check-out}
WORK=$(mktemp -d)
LOGS=$WORK/logs
mkdir -p "$OUT" "$LOGS"
OUT=$(cd "$OUT" && pwd)
trap 'tar czf "$OUT/logs.tar.gz" -C "$WORK" logs; rm -rf "$WORK"' EXIT  # the logs, even if stopped
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" MPLBACKEND=Agg TQDM_DISABLE=1 PYTHONUNBUFFERED=1
SUMMARY="$OUT/summary.md"
say() { echo "$@" | tee -a "$SUMMARY"; }
: > "$SUMMARY"
REHEARSE=0
[ "${1:-}" = "--rehearse" ] && REHEARSE=1

# stage NAME LIMIT_S COMMAND...: run it under a time limit, log to $LOGS/NAME.log, say how it went
stage() {
  local name=$1 limit=$2; shift 2
  local start=$SECONDS
  timeout "$limit" "$@" > "$LOGS/$name.log" 2>&1
  local code=$?
  local note=""
  [ $code -eq 124 ] && note=" (stopped at its ${limit} s limit)"
  say "$name: exit $code$note, $((SECONDS - start)) s"
  return $code
}

say "# tinylora GPU check, $(date -u +%Y-%m-%dT%H:%MZ)"
say '```'
{ if command -v nvidia-smi > /dev/null; then
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>&1
  else echo "nvidia-smi: not found"; fi
  git log -1 --format='commit %h %s' 2>/dev/null
  $PY - <<'PY'
import platform, numpy
print("python", platform.python_version(), "| numpy", numpy.__version__)
for name in ("cupy", "torch"):
    try:
        m = __import__(name)
        print(name, m.__version__)
    except Exception as err:
        print(name, "not available:", err)
PY
} 2>&1 | tee -a "$SUMMARY"
say '```'

GPU=$($PY -c "from tinylora.backend import cupy_available as c; ok, why = c(); print('yes' if ok else why)")
if [ "$GPU" = "yes" ] && [ $REHEARSE -eq 0 ]; then
  B=cupy TORCH=cuda
  MLP=1024,4096,16384 BLOCK=256,1024 LM=128,256,512,1024,2048 BATCH=1024
  TOY=$($PY -c "print(','.join(str(2**k) for k in range(4, 21)))")
  SWEEP=1024,2048,4096,8192,16384 BAL=1024,2048,4096,8192,16384 OOM=1024,2048,16384
elif [ $REHEARSE -eq 1 ]; then
  say "Rehearsal on the CPU: every stage on NumPy at tiny sizes (no GPU numbers here)."
  B=numpy TORCH=cpu
  MLP=128,256 BLOCK=64 LM=64 BATCH=256
  TOY=16,32,64,128,256,512,1024 SWEEP=16,32 BAL=16,32,64 OOM=16,32,32768
  export OPENBLAS_NUM_THREADS=${OPENBLAS_NUM_THREADS:-1} OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
else
  say "No GPU here: $GPU"
  say "The gpu tests below are skipped; run with --rehearse for every stage on the CPU."
  $PY -m pytest -m gpu -q -rs -p no:cacheprovider tests 2>&1 | tail -n 3 | tee -a "$SUMMARY"
  exit 0
fi

say "## 2. gpu-marked tests"
stage pytest_gpu 140 $PY -m pytest -m gpu -q -rs -p no:cacheprovider tests
say '```'; tail -n 4 "$LOGS/pytest_gpu.log" >> "$SUMMARY"; say '```'

say "## 3. tinylora gradcheck --backend $B"
stage gradcheck 35 $PY -m tinylora.run gradcheck --backend $B --json
sed -n '/^\[/,$p' "$LOGS/gradcheck.log" > "$OUT/gradcheck.json"
say "$($PY -c "import json; r = json.load(open('$OUT/gradcheck.json')); print(sum(x['ok'] for x in r), 'of', len(r), 'tensors ok; worst relative error', max(x['max_rel_error'] for x in r))" 2>&1 | tail -n 1)"

say "## 4. the steps against PyTorch eager ($B, float32; scripts/gpu_bench.py)"
stage bench 100 $PY scripts/gpu_bench.py --backend $B --torch-device $TORCH --mlp-widths $MLP \
    --block-widths $BLOCK --tinylm-widths $LM --batch $BATCH --graph --profile \
    --json-out "$OUT/bench_gpu.json"
grep -v "^ *$" "$LOGS/bench.log" | tee -a "$SUMMARY"

say "## 5. the widest sweeps in about a minute each"
stage toy 20 $PY -m tinylora.run toy-analytic --backend $B --widths "$TOY" --out "$WORK/toy" --no-progress
tail -n 3 "$LOGS/toy.log" >> "$SUMMARY"
stage sweep 55 $PY -m tinylora.run width-sweep --backend $B --dtype float32 --fast --widths "$SWEEP" \
    --out "$WORK/sweep" --no-progress
say "finished widths: $(ls "$WORK/sweep/parts" 2>/dev/null | tr '\n' ' ')"
tail -n 3 "$LOGS/sweep.log" >> "$SUMMARY"
stage balance 35 $PY -m tinylora.run balance --backend $B --readout sp --init zero_B --at-steps 2 \
    --sizes 0.003 --widths "$BAL" --out "$WORK/balance" --no-progress
tail -n 3 "$LOGS/balance.log" >> "$SUMMARY"

say "## 6. a planted out-of-memory: widths $OOM"
if [ "$B" = cupy ]; then  # the card made 512 MiB: width 16384's weight alone is 1 GiB
  stage oom 20 env CUPY_GPU_MEMORY_LIMIT=536870912 $PY -m tinylora.run width-sweep --backend cupy \
      --dtype float32 --fast --steps 4 --widths "$OOM" --out "$WORK/oom" --no-progress
else  # the host's address space capped at 3 GB: width 32768's float64 weight is 8 GiB
  stage oom 20 bash -c "ulimit -v 3000000 && exec $PY -m tinylora.run width-sweep --backend numpy \
      --fast --steps 4 --widths $OOM --out $WORK/oom --no-progress"
fi
code=$?
last=${OOM##*,}
errors=$(grep -c "^tinylora width-sweep: error:" "$LOGS/oom.log")
kept=$(ls "$WORK/oom/parts" 2>/dev/null | tr '\n' ' ')
say '```'; tail -n 3 "$LOGS/oom.log" >> "$SUMMARY"; say '```'
if [ $code -eq 1 ] && [ "$errors" -eq 1 ] && tail -n 1 "$LOGS/oom.log" \
    | grep -q "^tinylora width-sweep: error: out of memory at width $last: .*GiB" && [ -n "$kept" ]; then
  say "planted out-of-memory: PASS (exit 1, one line naming width $last and the memory; kept: $kept)"
else
  say "planted out-of-memory: FAIL (exit $code, $errors error lines, kept: ${kept:-nothing})"
fi

say "## 7. lesson 7 as a script (its GPU claims are asserts)"
stage lesson7 40 bash -c "cd lessons && TINYLORA_FAST=1 TINYLORA_CHECK_EXERCISES=1 exec $PY 07_on_a_gpu.py"
grep -E "^(GPU|CuPy|NumPy|SKIPPED|On a GPU|this lesson)" "$LOGS/lesson7.log" | head -n 30 | tee -a "$SUMMARY"
tail -n 2 "$LOGS/lesson7.log" | grep -i error >> "$SUMMARY"

say "done in $SECONDS s"

#!/usr/bin/env bash
# Every GPU check of tinylora in one prepared run, from the source tree (no install needed):
#
#     bash scripts/gpu_check.sh            # on the GPU machine; writes into $OUT if set
#
# 1. versions and the device; 2. the gpu-marked tests (NumPy/CuPy parity: forward, gradients,
# a 20-step Adam trajectory; the gradient catalogue on CuPy; TinyLM; the lab's batched grid);
# 3. `tinylora gradcheck --backend cupy`; 4. the GPU benchmark (scripts/gpu_bench.py: CuPy vs
# PyTorch CUDA eager vs the matmul floor); 5. the widest sweeps that fit in about a minute each
# (the analytic toy to 2^20, the width sweep to 2^14). On a machine without CuPy or a GPU it
# says so, runs what it can (the gpu tests then show as skipped), and exits 0.
set -u
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
OUT=${OUT:-gpu-check-out}
WORK=$(mktemp -d)
mkdir -p "$OUT"
export PYTHONPATH=".${PYTHONPATH:+:$PYTHONPATH}" MPLBACKEND=Agg TQDM_DISABLE=1 PYTHONUNBUFFERED=1
SUMMARY="$OUT/summary.md"
say() { echo "$@" | tee -a "$SUMMARY"; }
: > "$SUMMARY"

say "# tinylora GPU check, $(date -u +%Y-%m-%dT%H:%MZ)"
say '```'
{ nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>&1 || echo "nvidia-smi: not found"
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
if [ "$GPU" != "yes" ]; then
  say "No GPU here: $GPU"
  say "Rehearsal only: the gpu tests below are skipped, and the GPU parts are left out."
fi

say "## gpu-marked tests"
$PY -m pytest -m gpu -q -rs -p no:cacheprovider tests 2>&1 | tee "$WORK/pytest_gpu.log" | tail -n 25
say '```'; tail -n 3 "$WORK/pytest_gpu.log" >> "$SUMMARY"; say '```'
cp "$WORK/pytest_gpu.log" "$OUT/"

if [ "$GPU" = "yes" ]; then
  say "## tinylora gradcheck --backend cupy"
  $PY -m tinylora gradcheck --backend cupy --json > "$OUT/gradcheck_cupy.json"
  say "exit $?: $($PY -c "import json; r = json.load(open('$OUT/gradcheck_cupy.json')); print(sum(x['ok'] for x in r), 'of', len(r), 'tensors ok; worst', max(x['max_rel_error'] for x in r))")"

  say "## LoRA MLP step: CuPy vs PyTorch CUDA eager vs the matmul floor (batch 1024, r 8, float32)"
  timeout 240 $PY scripts/gpu_bench.py --json-out "$OUT/bench_gpu.json" 2>&1 | tee -a "$SUMMARY"

  say "## Widest sweeps in about a minute"
  widths=$($PY -c "print(','.join(str(2**k) for k in range(4, 21)))")
  start=$(date +%s)
  timeout 90 $PY -m tinylora toy-analytic --backend cupy --widths "$widths" --out "$WORK/toy" --no-progress > "$WORK/toy.log" 2>&1
  say "toy-analytic, widths 2^4..2^20 on CuPy: exit $?, $(( $(date +%s) - start )) s"
  tail -n 12 "$WORK/toy.log" >> "$SUMMARY"
  start=$(date +%s)
  timeout 150 $PY -m tinylora width-sweep --backend cupy --dtype float32 --fast \
      --widths 1024,2048,4096,8192,16384 --out "$WORK/sweep" --no-progress > "$WORK/sweep.log" 2>&1
  say "width-sweep --fast, widths 2^10..2^14 on CuPy, float32: exit $? (124 = stopped at the limit; finished widths are kept), $(( $(date +%s) - start )) s"
  tail -n 14 "$WORK/sweep.log" >> "$SUMMARY"
  ls "$WORK/sweep/parts" 2>/dev/null | sed 's/^/  finished: /' >> "$SUMMARY"
  start=$(date +%s)
  timeout 120 $PY -m tinylora balance --backend cupy --readout sp --init zero_B --at-steps 2 \
      --sizes 0.003 --widths 1024,2048,4096,8192,16384 --out "$WORK/balance" --no-progress \
      > "$WORK/balance.log" 2>&1
  say "balance (toy, sp, Init[1], t = 2, c = 0.003), widths 2^10..2^14 on CuPy: exit $?, $(( $(date +%s) - start )) s"
  tail -n 8 "$WORK/balance.log" >> "$SUMMARY"
fi
say "done"
rm -rf "$WORK"

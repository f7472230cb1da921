"""A training step captured as a CUDA graph (CuPy), and replayed: one launch instead of one per
kernel. An opt-in of `scripts/gpu_bench.py` (``--graph``), which measures whether it pays.

CUDA refuses to capture a step that reads the device on the host (a synchronisation), so a
capture is also the proof that the step has no host round trip (`tests/test_cuda_kernels.py`).

What a replay computes is what the captured step computed: every number a kernel takes as an
argument is frozen at capture, Adam's bias corrections 1 / (1 - beta^t) and the step count in
the optimizer's status among them. A replayed step therefore *times* a step; it is not a
training run (that would need t on the device), and nothing here pretends otherwise.
"""

from __future__ import annotations

from tinylora import backend
from tinylora.fast import validate as fast_validate


def capture(step, warmup: int = 2):
    """-> replay(): `step` (a function of no arguments, CuPy arrays, fast mode on) captured as a
    CUDA graph on a stream of its own, its temporaries from a memory pool of its own (so the
    addresses the graph writes are never handed to anyone else). `warmup` calls come first
    (kernels compiled, the pool filled); a step that reads the host raises CuPy's
    CUDARuntimeError. ``replay.graph``, ``.stream`` and ``.pool`` stay alive with it."""
    cp = backend.get_xp("cupy")
    stream, pool = cp.cuda.Stream(non_blocking=True), cp.cuda.MemoryPool()
    with cp.cuda.using_allocator(pool.malloc), stream:
        for _ in range(warmup):
            step()
        fast_validate.settle_checks()  # the warm-up's deferred checks, read outside the capture
        stream.synchronize()
        stream.begin_capture()
        try:
            step()
        finally:
            graph = stream.end_capture()
    fast_validate._pending.clear()  # captured, not run: their counts exist only after a replay

    def replay():
        graph.launch(stream)

    replay.graph, replay.stream, replay.pool = graph, stream, pool
    return replay

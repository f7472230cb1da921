"""Lesson 7's exercises, solved. Try them in the lesson first."""

import numpy as np


def bytes_moved(n, dtype):
    """Bytes read plus bytes written by one in-place pass a *= 0.5 over n numbers of `dtype`."""
    return 2 * n * np.dtype(dtype).itemsize  # each number read once and written once
    # float64 has 8 bytes a number, float32 4: where memory sets the time, float64 takes ~2x


def host_reads(steps, every):
    """The number of host reads (float() of a device number) logged_loop makes."""
    return steps // every + 1  # one per logged step, and the last loss returned at the end


def lines_that_wait(snippet):
    """The set of line numbers (0-based, as printed) where the CPU waits for the GPU."""
    return {2, 6, 8}  # `if loss > 10.0` (bool of a device value), float(), to_numpy()


def unit_roundoff(dtype):
    """u of np.float32 or np.float64, a Python float."""
    return float(np.finfo(dtype).eps) / 2  # eps is the spacing at 1; rounding errs by half of it


# Inline question: the step counts each gradient's NaN/inf on the GPU and writes the first
# refused step into a status array there; every update kernel runs only while that status says
# "none refused", and a refusal is sticky: the steps queued after it write nothing either, until
# the host reads the status at settle() (where the caller reads the loss anyway, and at the
# latest every SETTLE_EVERY steps), puts t back and raises (tinylora/fast/optim.py). So nothing
# is written after a bad gradient, whatever the CPU queued meanwhile. Exercise 2: every
# float(loss) is one wait, so a loop that logs every k steps waits about steps / k times instead
# of steps times; read (and check for divergence) every k steps, where a late stop costs at most
# k steps of work.


# The experiments to try, solved.
#
# Experiment 1, code to run in a cell of the lesson (after its imports): build a model with
# TINYLORA_BACKEND=cupy, and put the variable back whatever happens.
#
#     saved = os.environ.get(backend.ENV_VAR)
#     os.environ[backend.ENV_VAR] = "cupy"
#     try:
#         if GPU:
#             m = LoRAMLP(MLPConfig(16, [64, 64], 4), LoRAConfig(r=4), seed=0)
#             assert backend.xp_of(m.params["fc1.A"]) is cp  # the model lives on the GPU
#         else:
#             try:
#                 LoRAMLP(MLPConfig(16, [64, 64], 4), LoRAConfig(r=4), seed=0)
#             except BackendError as err:
#                 print("BackendError:", str(err).split(". ")[0])  # it names the cause
#             else:
#                 raise AssertionError("TINYLORA_BACKEND=cupy silently fell back")
#     finally:
#         if saved is None:
#             del os.environ[backend.ENV_VAR]
#         else:
#             os.environ[backend.ENV_VAR] = saved


def float32_error_at(h, error_at_1e5):
    """-> the predicted relative error of the float32 check of dA with step h."""
    # The loss is linear in A: (f(A + h) - f(A - h)) / 2h has no truncation error, only the
    # round-off of the two losses (about float32's precision times |f|, whatever h is) divided
    # by 2h. So the error scales like 1 / h: at h = 1e-2 about a thousand times smaller than at
    # 1e-5 (within the checker's factor of 4); the lesson prints whether that is still above
    # the float64 tolerance 1e-7.
    return error_at_1e5 * 1e-5 / h


def promoted(array_dtype, scalar):
    """-> the name of the dtype of np.ones(3, dtype=array_dtype) * scalar."""
    # NumPy 2 (NEP 50): a Python float is "weak", it takes the array's dtype; a NumPy scalar has
    # a dtype of its own and promotes like an array: float32 * np.float64 -> float64, float16 *
    # np.float32 -> float32, float32 * np.float32 -> float32 (only a wider NumPy scalar widens).
    return str(np.result_type(np.dtype(array_dtype), scalar))


# Experiment 4, to run in the lesson on a GPU, after part 3:
#
#     with tinylora.fast.enabled():
#         reading = median_time(lambda: float(wide_step()), xp, sync=False)
#     print(f"{1e3 * reading:.2f} ms without synchronising ({1e3 * times['fast'][0]:.2f} ms "
#           f"synchronised, {1e3 * times['fast'][1]:.2f} ms without the read)")
#     assert reading > 0.5 * times["fast"][0]
#
# What to expect: with the read inside, the unsynchronised time should be near the synchronised
# one (the assert asks for over half of it), well above the unsynchronised time without the
# read: float() waits for every kernel queued before it, so the step no longer returns early.
# (Not run in the tests, which have no GPU: check it on yours.)

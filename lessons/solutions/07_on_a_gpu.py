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

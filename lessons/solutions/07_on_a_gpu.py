"""Lesson 7's exercises, solved. Try them in the lesson first."""

import numpy as np


def host_copy(a):
    """A NumPy array with a's values (a is a NumPy or CuPy array)."""
    return a.get() if hasattr(a, "get") else np.asarray(a)  # CuPy: .get() copies to the host


def float32_safe_scale(alpha, r):
    """alpha / r, in a form that does not promote a float32 array it multiplies."""
    return float(alpha) / r  # a Python float never promotes a float32 array (NumPy 2)


def unit_roundoff(dtype):
    """u of np.float32 or np.float64, a Python float."""
    return float(np.finfo(dtype).eps) / 2  # eps is the spacing at 1; rounding errs by half of it

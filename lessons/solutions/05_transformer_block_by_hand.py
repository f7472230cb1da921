"""Lesson 5's exercises, solved. Try them in the lesson first."""


def layernorm_dx(dxhat, xhat, rstd):
    """dL/dx of layer norm, shaped like xhat (N, T, d)."""
    mean = dict(axis=-1, keepdims=True)
    return rstd * (dxhat - dxhat.mean(**mean) - xhat * (dxhat * xhat).mean(**mean))


def softmax_ds(p, dp):
    """dL/ds for p = softmax(s) over the last axis, shaped like p."""
    return p * (dp - (dp * p).sum(axis=-1, keepdims=True))  # J dp, J = diag(p) - p p^T


def delta_terms(Z, A0, B0, A1, B1, scale):
    """-> {"delta1", "delta2", "delta3"}: what moving A, B, and both did to the LoRA path."""
    dA, dB = A1 - A0, B1 - B0
    return {"delta1": scale * (Z @ dA) @ B0,  # A moved, B held
            "delta2": scale * (Z @ A0) @ dB,  # B moved, A held
            "delta3": scale * (Z @ dA) @ dB}  # both


def delta1_slope_change():
    """slope(delta1, width-scaled, step 2) - slope(delta1, shared, step 2)."""
    return -1.0  # delta1 at step 2 is proportional to eta_A, and eta_A ~ n0 / n

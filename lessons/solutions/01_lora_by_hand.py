"""Lesson 1's exercises, solved. Try them in the lesson first."""


def grad_B(u, dy):
    """dL/dB of y = ... + u B, shape (r, d_out)."""
    return u.T @ dy  # [r, N] @ [N, d_out] -> [r, d_out]


def grad_A(x, dy, B, scale):
    """dL/dA of y = ... + scale (x A) B, shape (d_in, r)."""
    return x.T @ (scale * (dy @ B.T))  # [d_in, N] @ [N, r] -> [d_in, r]


def grad_x(dy, W, A, B, scale):
    """dL/dx of y = x W + b + scale (x A) B, shape (N, d_in)."""
    return dy @ W.T + (scale * (dy @ B.T)) @ A.T  # frozen path + LoRA path, summed at the fork


def merged_weight(W, A, B, scale):
    """W' with x W' + b = x W + b + scale (x A) B for every x, shape (d_in, d_out)."""
    return W + scale * A @ B

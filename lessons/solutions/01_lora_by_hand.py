"""Lesson 1's exercises, solved. Try them in the lesson first."""


def zero_gradient_at_init2():
    """-> "dA", "dB", "both" or "neither": exactly zero at step 1 under Init[2]."""
    return "dB"  # dB = u^T dy with u = scale (x A) = 0 when A = 0; dA = scale x^T dy B^T is not


# Inline question 1: dB carries the factor A (through u = scale x A), so A = 0 makes it exactly
# zero, the mirror of Init[1], where dA carries B. A check at Init[2]'s start therefore proves
# nothing about dB: any formula with the factor u or A in it, e.g. one that forgets `scale`
# (u^T dy with u = x A), gives 0 there and passes. Check at a random A.


def svd_lora_grads(x, dy, A, s, B, scale):
    """-> (dA (d_in, r), ds (r,), dB (r, d_out)) of y = x W + b + scale ((x A) * s) B."""
    z_a = x @ A  # [N, r]
    u = scale * z_a * s  # [N, r]: what B multiplies
    dB = u.T @ dy  # [r, N] @ [N, d_out] -> [r, d_out]
    du = dy @ B.T  # [N, d_out] @ [d_out, r] -> [N, r]
    ds = (scale * du * z_a).sum(axis=0)  # s is broadcast over the N rows: summed back, [r]
    dA = x.T @ (scale * du * s)  # [d_in, N] @ [N, r] -> [d_in, r]
    return dA, ds, dB


def dropout_grad_x(dy, W, A, B, scale, m):
    """dL/dx of y = x W + b + scale ((x * m) A) B, shape (N, d_in)."""
    return dy @ W.T + (scale * (dy @ B.T) @ A.T) * m  # the mask acts on the LoRA path only


def factors_when_alpha_doubles():
    """-> (factor of the LoRA path's output, factor of dA, factor of dB)."""
    return 2.0, 2.0, 2.0  # each carries one factor of scale (dB through u = scale x A)


# Inline question 2: a centred difference's truncation error grows like h^2 times the third
# derivative, which is zero for a loss linear in A, so h = 1e-1 is exact but for round-off; the
# round-off of L(θ + h) - L(θ - h), about 1e-16 |L|, is divided by 2h, so h = 1e-12 amplifies it
# ten thousand-fold beyond h = 1e-5's.


def worse_step():
    """-> 1e-1 or 1e-12: the step h that gives the larger error of the centred difference."""
    return 1e-12


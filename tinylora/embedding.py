"""Token and learned position embeddings: a table lookup plus a row per position.

    x[n, t] = tok_emb[tokens[n, t]] + pos_emb[t]          tokens (N, T) int -> x (N, T, d)

Backward. A lookup copies rows, so its gradient adds rows back: every occurrence of token v adds
its dx row to dtok_emb[v] (a *scatter-add*: the same token may appear many times, and each
occurrence contributes). Position t is used once per sequence, so dpos_emb[t] = sum over n of
dx[n, t]; positions beyond T get zero gradient.

LoRA on the token table (PEFT's and loralib's ``Embedding``): the lookup of a low-rank update,

    x += scale * A[tokens] @ B         A (V, r), B (r, d):  tok_emb + scale A B, never formed

A is the input side (a row per token: the lookup is x = onehot(tokens) @ table), B the output
side. The init is the reverse of a linear layer's: **A = 0, B ~ N(0, 1)** (the paper's Init[2]).
The input is one-hot, so A's usual fan-in init N(0, 1/d_in) would give every token a row of
size 1/sqrt(V), vanishing with the vocabulary; B ~ N(0, 1) is the scale of the table itself
(embeddings ~ N(0, 1)). Backward: dB = (scale A[tokens])^T dx, and dA scatter-adds the rows
scale dx B^T into the rows of the tokens that occurred (like dtok_emb).
"""

from __future__ import annotations

from tinylora.backend import xp_of


def check_tokens(tokens, vocab_size: int, context: int, name: str = "tokens", stack=()):
    """Raise a clear ValueError unless `tokens` is an int array (N, T) (or (*stack, N, T): each
    model of a stack its own batch), 1 <= T <= context, with every id in [0, vocab_size)."""
    shape = tuple(getattr(tokens, "shape", ()))
    if len(shape) < 2 or shape[:-2] not in ((), tuple(stack)):
        also = f" or ({', '.join(map(str, stack))}, N, T)" if stack else ""  # a stack's own
        raise ValueError(f"{name}: expected an integer array of shape (N, T){also}, got shape "
                         f"{shape}")
    if tokens.dtype.kind not in "iu":
        raise ValueError(f"{name}: expected integer token ids, got dtype {tokens.dtype}")
    N, T = tokens.shape[-2:]
    if N == 0:
        raise ValueError(f"{name}: expected a non-empty batch (N >= 1), got shape {(N, T)}")
    if not 1 <= T <= context:
        raise ValueError(f"{name}: sequence length T={T} must be between 1 and the model's "
                         f"context {context}; crop the sequence to its last {context} tokens")
    if tokens.size and (int(tokens.min()) < 0 or int(tokens.max()) >= vocab_size):
        raise ValueError(f"{name}: token ids must lie in [0, {vocab_size}), got values in "
                         f"[{int(tokens.min())}, {int(tokens.max())}]")


def embedding_forward(tokens, tok_emb, pos_emb):
    """x = tok_emb[tokens] + pos_emb[:T].   tokens (N, T), tok_emb (V, d), pos_emb (context, d)."""
    T = tokens.shape[-1]
    x = tok_emb[tokens]  # [N, T] -> [N, T, d]   a gather (a new array)
    x += pos_emb[:T]  # [T, d] broadcast over N
    return x, (tokens, tok_emb.shape, pos_emb.shape)


def embedding_backward(dx, cache, need_dtok=True, need_dpos=True):
    """-> (dtok_emb, dpos_emb); each None unless asked for (frozen tables get no buffer)."""
    tokens, tok_shape, pos_shape = cache
    xp = xp_of(dx)
    d, T = dx.shape[-1], tokens.shape[-1]
    dtok = dpos = None
    if need_dtok:
        dtok = scatter_add_rows(tok_shape, tokens, dx)  # [V, d]
    if need_dpos:
        dpos = xp.zeros(pos_shape, dtype=dx.dtype)  # [context, d]
        dpos[:T] = dx.reshape(-1, T, d).sum(axis=0)  # [N, T, d] -> [T, d]
    return dtok, dpos


def scatter_add_rows(shape, tokens, rows):
    """The gradient of a gather: zeros of `shape` (V, k), row ``rows[n, t]`` added into row
    ``tokens[n, t]`` (a token that occurs twice gets both rows: repeats sum)."""
    xp = xp_of(rows)
    out = xp.zeros(shape, dtype=rows.dtype)
    xp.add.at(out, tokens.reshape(-1), rows.reshape(-1, shape[-1]))  # [N*T, k] into [V, k]
    return out


def lora_embedding_forward(tokens, A, B, scale: float):
    """scale * A[tokens] @ B: the LoRA path of the token lookup.   tokens (N, T) -> (N, T, d)."""
    u = scale * A[tokens]  # [N, T] -> [N, T, r]   a gather, scaled
    return u @ B, (tokens, A.shape, B, u, scale)  # [N, T, r] -> [N, T, d]


def lora_embedding_backward(dx, cache):
    """-> (dA, dB).   With u = scale A[tokens]:  dB = u^T dx;  du = dx B^T, and dA scatter-adds
    the rows scale du into the rows of the tokens that occurred."""
    tokens, a_shape, B, u, scale = cache
    r, d = B.shape
    dB = u.reshape(-1, r).T @ dx.reshape(-1, d)  # [r, N*T] @ [N*T, d]
    du = dx @ B.T  # [N, T, d] -> [N, T, r]
    return scatter_add_rows(a_shape, tokens, scale * du), dB  # [V, r], [r, d]

"""`tinylora bench --profile`: one Transformer-block step split into its parts, each timed.

Where does a block step spend the time above its matrix-product floor? The step is cut into
the parts it runs, in its order, each part the library's own call on the step's own arrays
(one forward is run first to collect them):

    forward   ln1, q/k/v/o projections, scores, the scale + causal mask + softmax (one blocked
              pass), weighted sum, residual, ln2, fc1, gelu, fc2, residual, the loss
    backward  the loss, fc2, gelu, fc1, ln2, residual sum, o, the attention's products and its
              softmax, q/k/v (no input gradient: x and ln1 are frozen), Adam

Each part gets: its median time (all parts, the whole step and the floor interleaved, as in
`tinylora bench`); its own floor (the bare products it contains, on fresh arrays of the same
shapes); the time above that floor; and the bytes it moves, counted as one read of every array
it is given and one write of every array it returns (a lower bound on its memory traffic).
"glue" is the whole step minus the sum of its parts: Python and the calls between, and above
all the caches: a part repeated alone finds its arrays warm, and so does its own floor (the parts'
floors add up to less than the bench's floor, which runs every product once in turn, as the step
does). So the step's overhead, step - floor, is compared with the sum of the "above floor"
column. With PyTorch installed, the same products are also timed in PyTorch (its BLAS).
Head split and merge make no copy (`split_heads` is a view, `matmul_merged` writes the merged
rows), so they have no row.
"""

from __future__ import annotations

import math

from tinylora.attention import split_heads
from tinylora.backend import xp_of
from tinylora.bench import torch_mirror
from tinylora.bench.timing import plan_repetitions, time_interleaved, warm_up
from tinylora.bench.workloads import (
    Transposed,
    block_products,
    build_block,
    lora_products,
    matmul_floor,
)
from tinylora.fast import attention as att
from tinylora.layers import gelu_backward, gelu_forward, mse_backward, mse_forward
from tinylora.norms import layernorm_backward, layernorm_forward
from tinylora.projection import proj_backward, proj_forward
from tinylora.run.records import markdown_table


def _nbytes(obj) -> int:
    """Bytes of every array in `obj` (an array, or tuples/lists of them, nested)."""
    if hasattr(obj, "nbytes") and hasattr(obj, "shape"):
        return int(obj.nbytes)
    if isinstance(obj, dict):
        return _nbytes(list(obj.values()))
    if isinstance(obj, (tuple, list)):
        return sum(_nbytes(o) for o in obj)
    return 0


def _add(a, b):
    return a + b


def block_parts(width: int, dtype: str = "float32"):
    """-> (workload, parts): parts are (name, fn, args, products) in the order the step runs."""
    wl = build_block(width, dtype)
    m, x, y = wl.model, wl.x, wl.y
    params, sc, H, tr = m.live_params(), m.scale, m.n_head, set(m.trainable)
    N, T, d = x.shape
    M, r, d_ff = N * T, m.lora.r, m.d_ff
    head, scores = (N, H, T, d // H), (N, H, T, T)
    parts = []

    def part(name, fn, args, products=()):
        parts.append((name, fn, args, list(products)))
        return fn(*args)

    def proj(name, h, d_in, d_out):
        return part(f"{name} fwd (3 products, bias, LoRA sum)", proj_forward, (h, params, name, sc),
                    lora_products(M, d_in, d_out, r)[:3])

    h1, c_ln1 = part("ln1 fwd", layernorm_forward, (x, params["ln1.g"], params["ln1.b"]))
    (q, c_q), (k, c_k), (v, c_v) = (proj(f"attn.{n}", h1, d, d) for n in "qkv")
    qh, kh, vh = (split_heads(a, H) for a in (q, k, v))
    s = part("scores qh kh^T", lambda a_, b_: a_ @ b_.swapaxes(-1, -2), (qh, kh),
             [(head, Transposed(head))])
    c = 1.0 / math.sqrt(d // H)
    bound = part("score bound: c times the largest norms of q and k", att.score_bound, (qh, kh, c))
    pr = part("scale, causal mask, softmax fwd (one blocked pass)", att.masked_softmax_in_blocks,
              (s.copy(), c, bound))
    yv = part("weighted sum p vh (merged)", att.matmul_merged, (pr, vh), [(scores, head)])
    a, c_o = proj("attn.o", yv, d, d)
    x1 = part("residual x + attn", _add, (x, a))
    h2, c_ln2 = part("ln2 fwd", layernorm_forward, (x1, params["ln2.g"], params["ln2.b"]))
    u, c_fc1 = proj("mlp.fc1", h2, d, d_ff)
    g, c_act = part("gelu fwd", gelu_forward, (u,))
    mo, c_fc2 = proj("mlp.fc2", g, d_ff, d)
    out = part("residual x1 + mlp", _add, (x1, mo))
    _, c_loss = part("loss fwd (mse)", mse_forward, (out, y))
    dout = part("loss bwd", mse_backward, (1.0, c_loss))

    grads = {}

    def proj_b(name, dy, cache, d_in, d_out, need_dx):
        what = "dx, dA, dB" if need_dx else "dA, dB"
        return part(f"{name} bwd ({what})", proj_backward, (dy, cache, tr, grads, need_dx),
                    lora_products(M, d_in, d_out, r, need_dx)[3:])

    da = proj_b("mlp.fc2", dout, c_fc2, d_ff, d, True)
    du = part("gelu bwd", gelu_backward, (da, c_act))
    dh2 = proj_b("mlp.fc1", du, c_fc1, d, d_ff, True)
    dx1b, _, _ = part("ln2 bwd (dx)", layernorm_backward, (dh2, c_ln2))
    dx1 = part("residual sum dout + dx1", _add, (dout, dx1b))
    dyv = proj_b("attn.o", dx1, c_o, d, d, True)
    dyh = split_heads(dyv, H)
    dv = part("dv = p^T dyh (merged)", att.matmul_merged, (pr.swapaxes(-1, -2), dyh),
         [(Transposed(scores), head)])
    dp = part("dp = dyh vh^T", lambda a_, b_: a_ @ b_.swapaxes(-1, -2), (dyh, vh),
              [(head, Transposed(head))])
    ds = part("softmax bwd (from output, in place)", att.softmax_backward_from_output,
              (dp.copy(), pr, dyh, split_heads(yv, H)))
    def scaled(a_, b_):
        o = att.matmul_merged(a_, b_)
        o *= c
        return o

    dq = part("dq = c ds kh (merged)", scaled, (ds, kh), [(scores, head)])
    dk = part("dk = c ds^T qh (merged)", scaled, (ds.swapaxes(-1, -2), qh),
              [(Transposed(scores), head)])
    for n, dz, cache in (("q", dq, c_q), ("k", dk, c_k), ("v", dv, c_v)):
        proj_b(f"attn.{n}", dz, cache, d, d, False)
    part("Adam (12 factors)", wl.opt.step, (grads,))
    return wl, parts


def profile(width: int, dtype: str = "float32", quick: bool = False) -> dict:
    """{"rows": one per part (part, ms, floor_ms, above_ms, mb, gbps), "step_ms", "floor_ms",
    "glue_ms", "width", "dtype"}: one interleaved timing of every part, the step and its floor."""
    wl, parts = block_parts(width, dtype)
    xp, dt = xp_of(wl.x), wl.x.dtype
    fns = {"step": wl.step, "floor": wl.floor}
    if torch_mirror.available()[0]:
        fns["torch floor"] = torch_mirror.torch_floor(block_products(wl.model, wl.x), dtype)
    for i, (_, fn, args, products) in enumerate(parts):
        fns[f"p{i}"] = (lambda f=fn, a=args: f(*a))
        if products:
            fns[f"f{i}"] = matmul_floor(products, xp, dt)
    per_call = warm_up(fns, 2)
    rounds, inner = plan_repetitions(per_call, quick)
    med = time_interleaved(fns, rounds, inner, warmup=0)
    rows = []
    for i, (name, fn, args, _) in enumerate(parts):
        ms, floor = 1e3 * med[f"p{i}"], 1e3 * med.get(f"f{i}", 0.0)
        mb = (_nbytes(args) + _nbytes(fn(*args))) / 1e6
        rows.append({"part": name, "ms": ms, "floor_ms": floor, "above_ms": ms - floor, "mb": mb,
                     "gbps": mb / ms})
    step = 1e3 * med["step"]
    torch_floor = 1e3 * med["torch floor"] if "torch floor" in med else None
    return {"width": width, "dtype": dtype, "rows": rows, "step_ms": step,
            "floor_ms": 1e3 * med["floor"], "torch_floor_ms": torch_floor,
            "glue_ms": step - sum(r["ms"] for r in rows)}


def table(prof: dict) -> str:
    """The parts as a Markdown table, then the sums that reconcile them with the whole step."""
    rows = [[r["part"], f"{r['ms']:.3f}", f"{r['floor_ms']:.3f}", f"{r['above_ms']:.3f}",
             f"{r['mb']:.1f}", f"{r['gbps']:.1f}"] for r in prof["rows"]]
    parts_ms = sum(r["ms"] for r in prof["rows"])
    parts_floor = sum(r["floor_ms"] for r in prof["rows"])
    above = sum(r["above_ms"] for r in prof["rows"])
    rows += [["**sum of the parts**", f"{parts_ms:.3f}", f"{parts_floor:.3f}", f"{above:.3f}",
              "", ""],
             ["glue (step - sum of parts)", f"{prof['glue_ms']:.3f}", "", f"{prof['glue_ms']:.3f}",
              "", ""],
             ["**whole step** (bench floor)", f"{prof['step_ms']:.3f}", f"{prof['floor_ms']:.3f}",
              f"{prof['step_ms'] - prof['floor_ms']:.3f}", "", ""]]
    torch = ("" if prof["torch_floor_ms"] is None else
             f"; the same products in PyTorch: {prof['torch_floor_ms']:.3f} ms")
    return (f"block, width {prof['width']}, {prof['dtype']}: step {prof['step_ms']:.3f} ms, "
            f"floor {prof['floor_ms']:.3f} ms (step/floor {prof['step_ms'] / prof['floor_ms']:.2f})"
            f"{torch}\n\n"
            + markdown_table(["part", "ms", "its floor ms", "above floor ms", "MB moved",
                              "GB/s"], rows))

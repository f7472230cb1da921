"""PyTorch (CPU, eager, autograd, ``torch.optim.Adam``) mirrors of the benchmark workloads.

Each mirror starts from the workload's initial weights and data (`Workload.init`, `.x`, `.y`),
computes the same function with the same dtype and the same LoRA+ groups, and lets autograd
derive the gradients. PyTorch is optional: `available()` says whether it can be imported, and
nothing in the library or its tests needs it.
"""

from __future__ import annotations

import os

from tinylora import backend
from tinylora.bench.workloads import LR, LR_RATIO, Transposed, Workload
from tinylora.groups import loraplus_groups


def available() -> tuple[bool, str]:
    """(True, version) when PyTorch imports, else (False, the reason)."""
    try:
        import torch  # noqa: PLC0415 (optional, only for the comparison)
    except ImportError as err:
        return False, f"PyTorch is not installed ({err})"
    return True, torch.__version__


def _tensors(wl: Workload, device: str = "cpu"):
    import torch  # noqa: PLC0415

    frozen = {k: torch.from_numpy(v.copy()).to(device) for k, v in wl.init.items()}
    for k in wl.model.trainable:
        frozen[k].requires_grad_(True)
    x = torch.from_numpy(backend.to_numpy(wl.x).copy()).to(device)
    y = torch.from_numpy(backend.to_numpy(wl.y).copy()).to(device)
    return frozen, x, y


def _adam(params: dict):
    """torch.optim.Adam with the library's LoRA+ groups (`tinylora.groups.loraplus_groups`:
    every ``*.B`` at LR * LR_RATIO, the rest at LR), their keys mapped to the tensors."""
    import torch  # noqa: PLC0415

    trainable = [k for k, v in params.items() if v.requires_grad]
    return torch.optim.Adam(_torch_groups(loraplus_groups(trainable, lr=LR, lr_ratio=LR_RATIO),
                                          params))


def _torch_groups(groups: list, tensors: dict) -> list:
    """The library's groups (keys, rate) as torch.optim groups (tensors, rate)."""
    return [{"params": [tensors[k] for k in g["params"]], "lr": g["lr"]} for g in groups]


def mlp_step(wl: Workload, device: str = "cpu"):
    """-> (step(), params): the LoRA MLP of `wl` in PyTorch on `device` ("cpu" or "cuda");
    `params` are the live tensors."""
    import torch  # noqa: PLC0415

    params, x, y = _tensors(wl, device)
    model = wl.model
    scale, names = model.scale, model.layer_names
    opt = _adam(params)

    def forward(h):
        for i, name in enumerate(names):
            z_a = h @ params[f"{name}.A"]  # [N, d_in] -> [N, r]
            h = h @ params[f"{name}.W"] + (scale * z_a) @ params[f"{name}.B"]
            if i < len(names) - 1:
                h = torch.relu(h)
        return h

    def step():
        opt.zero_grad(set_to_none=True)
        loss = torch.nn.functional.mse_loss(forward(x), y)
        loss.backward()
        opt.step()
        return loss

    return step, params


def _block(x, params: dict, prefix: str, model):
    """The pre-LN Transformer block at `prefix` of `model` (its n_head, scale, LoRA targets),
    written as a PyTorch user would: F.layer_norm, F.scaled_dot_product_attention (causal),
    F.gelu (tanh)."""
    import torch  # noqa: PLC0415

    F = torch.nn.functional
    scale, n_head, targets, d = model.scale, model.n_head, set(model.targets), x.shape[-1]

    def lin(h, name):
        name = prefix + name
        out = h @ params[f"{name}.W"] + params[f"{name}.b"]
        if name in targets:
            out = out + (scale * (h @ params[f"{name}.A"])) @ params[f"{name}.B"]
        return out

    def heads(t):  # (N, T, d) -> (N, H, T, dh)
        return t.view(*t.shape[:2], n_head, d // n_head).transpose(1, 2)

    h = F.layer_norm(x, (d,), params[f"{prefix}ln1.g"], params[f"{prefix}ln1.b"], eps=1e-5)
    q, k, v = (heads(lin(h, f"attn.{n}")) for n in "qkv")
    a = F.scaled_dot_product_attention(q, k, v, is_causal=True)
    x1 = x + lin(a.transpose(1, 2).reshape(x.shape), "attn.o")
    h2 = F.layer_norm(x1, (d,), params[f"{prefix}ln2.g"], params[f"{prefix}ln2.b"], eps=1e-5)
    return x1 + lin(F.gelu(lin(h2, "mlp.fc1"), approximate="tanh"), "mlp.fc2")


def _stepper(opt, loss_of):
    def step():
        opt.zero_grad(set_to_none=True)
        loss = loss_of()
        loss.backward()
        opt.step()
        return loss

    return step


def block_step(wl: Workload, device: str = "cpu"):
    """-> (step(), params): the Transformer block of `wl` in PyTorch (`_block`), MSE loss."""
    import torch  # noqa: PLC0415

    params, x, y = _tensors(wl, device)
    return _stepper(_adam(params), lambda: torch.nn.functional.mse_loss(
        _block(x, params, "", wl.model), y)), params


def tinylm_step(wl: Workload, device: str = "cpu"):
    """-> (step(), params): TinyLM of `wl` in PyTorch: the embeddings, the blocks (`_block`), the
    final layer norm, the head, and F.cross_entropy over the N T positions."""
    import torch  # noqa: PLC0415

    F = torch.nn.functional
    params, tokens, targets = _tensors(wl, device)
    m = wl.model

    def logits():
        x = params["tok_emb"][tokens] + params["pos_emb"][: tokens.shape[1]]
        for i in range(m.n_layer):
            x = _block(x, params, f"blocks.{i}.", m)
        x = F.layer_norm(x, (m.d_model,), params["ln_f.g"], params["ln_f.b"], eps=1e-5)
        return x @ params["head.W"]  # [N, T, V]

    return _stepper(_adam(params), lambda: F.cross_entropy(
        logits().reshape(-1, m.vocab_size), targets.reshape(-1))), params


def grid_step(wl: Workload):
    """-> (step(), params): the grid's cells batched in PyTorch. torch.optim.Adam has one
    learning rate per group, so each cell's A and B are their own leaves (2 groups per cell),
    stacked in the forward into (S, ., .) tensors; params["fc2.A"] is the list of S leaves."""
    import torch  # noqa: PLC0415

    params, x, y = _tensors(wl)
    S, scale = len(wl.cells), wl.model.scale
    A = [params["fc2.A"][s].detach().clone().requires_grad_(True) for s in range(S)]
    B = [params["fc2.B"][s].detach().clone().requires_grad_(True) for s in range(S)]
    groups = []
    for s, (eta_a, eta_b) in enumerate(wl.cells):  # each cell's A and B: the library's groups
        groups += _torch_groups(loraplus_groups(["fc2.A", "fc2.B"], lr=eta_a, lr_B=eta_b),
                                {"fc2.A": A[s], "fc2.B": B[s]})
    opt = torch.optim.Adam(groups)
    W1, W2, W3 = params["fc1.W"], params["fc2.W"], params["fc3.W"]

    def forward():
        h = torch.relu(x @ W1)  # [N, n], shared by every cell
        z_a = h @ torch.stack(A)  # [S, N, r]
        h = torch.relu(h @ W2 + (scale * z_a) @ torch.stack(B))  # [S, N, n]
        return h @ W3  # [S, N, 1]

    def step():
        opt.zero_grad(set_to_none=True)
        loss = ((forward() - y) ** 2).mean(dim=(1, 2)).sum()  # each cell's own mean
        loss.backward()
        opt.step()
        return loss

    return step, {"fc2.A": A, "fc2.B": B}


MIRRORS = {"mlp": mlp_step, "block": block_step, "grid": grid_step, "tinylm": tinylm_step}


def threads() -> int | None:
    """PyTorch's intra-op thread count (None without PyTorch)."""
    if not available()[0]:
        return None
    import torch  # noqa: PLC0415

    return torch.get_num_threads()


def match_threads() -> None:
    """Give PyTorch the thread count of NumPy's BLAS, so both compute on the same cores: the
    count OpenBLAS read from OPENBLAS_NUM_THREADS (or OMP_NUM_THREADS), else every core."""
    import torch  # noqa: PLC0415

    blas = os.environ.get("OPENBLAS_NUM_THREADS") or os.environ.get("OMP_NUM_THREADS")
    n = int(blas) if blas and blas.isdigit() else os.cpu_count() or 1
    if torch.get_num_threads() != n:
        torch.set_num_threads(n)


def torch_step(wl: Workload):
    """The PyTorch step for `wl`, or None when PyTorch is absent or the workload has no mirror."""
    if not available()[0] or wl.name not in MIRRORS:
        return None
    match_threads()
    return MIRRORS[wl.name](wl)[0]


def torch_floor(products, dtype: str):
    """The same bare products as `tinylora.bench.workloads.matmul_floor`, in PyTorch (CPU): how
    fast PyTorch's own matrix products are on the step's shapes."""
    import torch  # noqa: PLC0415

    match_threads()
    gen = torch.Generator().manual_seed(123)

    def operand(spec):
        shape = spec.shape if isinstance(spec, Transposed) else spec
        t = torch.randn(shape, generator=gen, dtype=getattr(torch, dtype))
        return t.transpose(-1, -2) if isinstance(spec, Transposed) else t

    pairs = [(operand(a), operand(b)) for a, b in products]

    def floor():
        for a, b in pairs:
            a @ b

    return floor


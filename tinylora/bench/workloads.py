"""The workloads that `tinylora bench` times: a model, its data, one training step, a floor.

A `Workload` is everything the timer needs, built once:

    step()   one training step's arithmetic, as the library computes it (`timed_step`):
             ``loss, grads = loss_and_grads(model, x, y); opt.step(grads)``   (in place)
    floor()  the bare matrix products that an exact step cannot avoid, same shapes and dtype,
             on the same array library (for "grid": the same cells trained one by one)

`tinylora.bench.torch_mirror` mirrors each workload in PyTorch from the same weights and data.

    mlp    LoRAMLP width -> width -> width, LoRA (rank 8) on fc1 and fc2, batch 256, Adam (LoRA+)
    block  TransformerBlock d_model = width, 4 heads, LoRA (rank 8) on q, k, v, o, fc1, fc2,
           x (8, 128, width), Adam (LoRA+)
    grid   16 (eta_A, eta_B) cells of the lab's width-sweep model trained at once (a stacked
           LoRAMLP, learning rates per cell) against the same 16 cells one by one
    tinylm TinyLM d_model = width (2 layers, 4 heads, context 64, 74 symbols), LoRA rank 8 on
           every block layer, next-token cross-entropy on a 16 x 64 batch (`scripts/gpu_bench.py`)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import NamedTuple

from tinylora import backend
from tinylora.block import BlockConfig, TransformerBlock
from tinylora.groups import loraplus_groups
from tinylora.lab.finetune_toy import toy_task
from tinylora.lora import LoRAConfig
from tinylora.models import LoRAMLP, MLPConfig
from tinylora.optim import Adam
from tinylora.train import loss_and_grads
from tinylora.transformer import LMConfig, TinyLM

BATCH = 256  # MLP rows per step
RANK = 8
LR, LR_RATIO = 1e-3, 16.0  # Adam with the LoRA+ groups: A at LR, B at LR * LR_RATIO


@dataclass
class Workload:
    """One benchmark case. `x`, `y` and `init` (host copies of the parameters before any step)
    let `tinylora.bench.torch_mirror` rebuild the identical computation."""

    name: str  # "mlp" | "block" | "grid"
    width: int
    dtype: str
    model: object
    opt: object
    x: object
    y: object
    step: Callable[[], object]
    floor: Callable[[], object]
    init: dict = field(default_factory=dict)
    cells: list = field(default_factory=list)  # grid only: (eta_A, eta_B) per stacked model
    singles: list = field(default_factory=list)  # grid only: (model, optimizer) per cell


def timed_step(model, opt, x, y, loss: str = "mse"):
    """The step the bench times: forward, loss, backward, optimizer update (in place). Not
    `tinylora.train.train_step`, whose divergence rule reads the loss on the host each step:
    the arithmetic of a step, nothing around it."""
    value, grads = loss_and_grads(model, x, y, loss)
    opt.step(grads)
    return value


def _adam(model):
    params = model.trainable_params()
    return Adam(params, groups=loraplus_groups(params, lr=LR, lr_ratio=LR_RATIO))


def _host_copy(params):
    return {k: backend.to_numpy(v).copy() for k, v in params.items()}


# --------------------------------------------------------------------------------------------
# (a) the LoRA MLP


def build_mlp(width: int, dtype: str = "float32", seed: int = 0, backend_name=None,
              batch: int = BATCH) -> Workload:
    """LoRAMLP(width, width, width), relu, LoRA rank 8 on fc1 and fc2, MSE on a batch of 256
    (`scripts/gpu_bench.py` uses batch 1024 on a GPU)."""
    xp = backend.get_xp(backend_name)
    model = LoRAMLP(MLPConfig(width, width, width), LoRAConfig(r=RANK), seed=seed,
                    backend=backend_name, dtype=dtype)
    return _workload("mlp", dtype, model, (batch, width), seed, xp, mlp_floor)


def _workload(name: str, dtype: str, model, shape: tuple, seed: int, xp, floor,
              data=None, loss: str = "mse") -> Workload:
    """A model's Workload: `data` (x, y), or random x and y of `shape` (seed + 1), Adam with the
    LoRA+ groups, one `timed_step` as the step and ``floor(model, x)`` as the floor."""
    rng = backend.host_rng(seed + 1)
    x, y = data or (backend.normal(rng, shape, 1.0, xp, dtype) for _ in "xy")
    init = _host_copy(model.params)
    opt = _adam(model)
    width = shape[-1] if shape else model.d_model
    return Workload(name, width, dtype, model, opt, x, y, init=init,
                    step=lambda: timed_step(model, opt, x, y, loss), floor=floor(model, x))


def mlp_floor(model, x):
    """The bare products of one exact LoRA-MLP step (`mlp_products`), as a function."""
    return matmul_floor(mlp_products(model, x), backend.xp_of(x), x.dtype)


def mlp_products(model, x):
    """The products of one exact LoRA-MLP step (`lora_products` per layer; the first layer's
    input needs no gradient)."""
    M, r = x.shape[0], model.lora.r
    products = []
    for i in range(len(model.layer_names)):
        products += lora_products(M, model.widths[i], model.widths[i + 1], r, need_dx=i > 0)
    return products


# --------------------------------------------------------------------------------------------
# The floor: bare products on fresh arrays of the step's shapes and dtype


class Transposed(NamedTuple):
    """An operand of `shape` used transposed (last two axes), as the step uses ``x^T`` or ``W^T``:
    a view of a contiguous array, which BLAS reads without a copy."""

    shape: tuple


def lora_products(M, d_in, d_out, r, need_dx=True):
    """The products of one LoRA layer ``y = x W + scale (x A) B`` on M rows, forward and backward:

        forward   x W, x A, z_a B
        backward  dz_a = dy B^T, dB = z_a^T dy, dA = x^T dz_a, and (need_dx) dy W^T, dz_a A^T
    """
    products = [((M, d_in), (d_in, d_out)), ((M, d_in), (d_in, r)), ((M, r), (r, d_out)),
                ((M, d_out), Transposed((r, d_out))), (Transposed((M, r)), (M, d_out)),
                (Transposed((M, d_in)), (M, r))]
    if need_dx:
        products += [((M, d_out), Transposed((d_in, d_out))), ((M, r), Transposed((d_in, r)))]
    return products


def matmul_floor(products, xp, dtype, seed: int = 123):
    """A function that computes ``a @ b`` for every (a, b) in `products` (shapes, or `Transposed`
    shapes) on random arrays made once here: the matrix-multiply work of a step and nothing
    else."""
    rng = backend.host_rng(seed)

    def operand(spec):
        if isinstance(spec, Transposed):
            return backend.normal(rng, spec.shape, 1.0, xp, dtype).swapaxes(-1, -2)
        return backend.normal(rng, spec, 1.0, xp, dtype)

    pairs = [(operand(a), operand(b)) for a, b in products]

    def floor():
        for a, b in pairs:
            a @ b

    return floor


# --------------------------------------------------------------------------------------------
# (b) the Transformer block


BLOCK_N, BLOCK_T, BLOCK_HEADS = 8, 128, 4


def build_block(width: int, dtype: str = "float32", seed: int = 0, backend_name=None) -> Workload:
    """TransformerBlock(d_model = width, 4 heads), LoRA rank 8 on q, k, v, o, fc1, fc2; MSE on
    x, y of shape (8, 128, width)."""
    xp = backend.get_xp(backend_name)
    model = TransformerBlock(BlockConfig(width, BLOCK_HEADS), LoRAConfig(r=RANK), seed=seed,
                             backend=backend_name, dtype=dtype)
    return _workload("block", dtype, model, (BLOCK_N, BLOCK_T, width), seed, xp, block_floor)


def block_floor(model, x):
    """The bare products of one exact block step (`block_products`), as a function."""
    return matmul_floor(block_products(model, x), backend.xp_of(x), x.dtype)


def block_products(model, x):
    """The products of one exact block step: the six LoRA projections (q, k, v need no dx: the
    block's input and ln1 are frozen) and the attention's four batched products and their
    backward (dp = dyh vh^T, dvh = p^T dyh, dqh = ds kh, dkh = ds^T qh), on contiguous heads."""
    N, T, d = x.shape
    M, r, d_ff, H = N * T, model.lora.r, model.d_ff, model.n_head
    head, att = (N, H, T, d // H), (N, H, T, T)
    products = []
    for d_in, d_out, need_dx in ((d, d, False), (d, d, False), (d, d, False), (d, d, True),
                                 (d, d_ff, True), (d_ff, d, True)):  # q, k, v, o, fc1, fc2
        products += lora_products(M, d_in, d_out, r, need_dx)
    products += [(head, Transposed(head)), (att, head),  # s = qh kh^T, yh = p vh
                 (head, Transposed(head)), (Transposed(att), head), (att, head),  # backward
                 (Transposed(att), head)]
    return products


# --------------------------------------------------------------------------------------------
# (c) the batched grid: many (eta_A, eta_B) cells at once against the same cells one by one

GRID_ETA_A = (1e-4, 3e-4, 1e-3, 3e-3)
GRID_ETA_B = (1e-3, 3e-3, 1e-2, 3e-2)  # 4 x 4 = 16 cells, each its own (eta_A, eta_B)
GRID_POINTS = 1000


def build_grid(width: int, dtype: str = "float32", seed: int = 0, backend_name=None) -> Workload:
    """`step`: the 16 cells as one stacked model (``stack=(16,)``, Adam with learning rates of
    shape (16, 1, 1)); `floor`: the same 16 cells as 16 plain models, one training step each.
    Model and data: the lab's width-sweep task (`tinylora.lab.finetune_toy.toy_task`, the
    fine-tuning variant of paper Eq. 3: 5 -> width -> width -> 1, LoRA rank 4 on fc2, 1000
    points)."""
    xp = backend.get_xp(backend_name)
    task = toy_task(width, "finetune", "adam", steps=1, record_steps=(1,), n_train=GRID_POINTS,
                    n_test=8, model_seed=seed, backend_name=backend_name, dtype=dtype)
    cells = [(ea, eb) for ea in GRID_ETA_A for eb in GRID_ETA_B]
    S = len(cells)
    model = task.build((S,))
    for k, v in task.adapter_init(seed).items():
        model.params[k][...] = v  # every cell starts from the same factors
    x, y = task.x_train, task.y_train
    init = _host_copy(model.params)

    def rates(values):  # one learning rate per cell, shaped to broadcast against (S, ., .)
        return xp.asarray(values, dtype=dtype).reshape(S, 1, 1)

    params = model.trainable_params()
    opt = Adam(params, groups=loraplus_groups(params, lr=rates([ea for ea, _ in cells]),
                                              lr_B=rates([eb for _, eb in cells])))
    singles = []
    for s, (ea, eb) in enumerate(cells):  # the same cells, one plain model each
        one = task.build(())
        for k in ("fc2.A", "fc2.B"):
            one.params[k][...] = model.params[k][s]
        one_params = one.trainable_params()
        one_opt = Adam(one_params, groups=loraplus_groups(one_params, lr=ea, lr_B=eb))
        singles.append((one, one_opt))

    def one_by_one():
        for one, one_opt in singles:
            timed_step(one, one_opt, x, y)

    return Workload("grid", width, dtype, model, opt, x, y, init=init, cells=cells,
                    singles=singles, step=lambda: timed_step(model, opt, x, y), floor=one_by_one)


# --------------------------------------------------------------------------------------------
# (d) TinyLM fine-tuning (a GPU workload: `scripts/gpu_bench.py`)

LM_VOCAB, LM_N, LM_T, LM_LAYERS = 74, 16, 64, 2  # the shipped texts' 74 symbols


def build_tinylm(width: int, dtype: str = "float32", seed: int = 0,
                 backend_name=None) -> Workload:
    """TinyLM(d_model = width, 4 heads, 2 layers, context 64), LoRA rank 8 on every block
    layer; next-token cross-entropy on a 16 x 64 batch of random tokens (x: tokens[:, :-1])."""
    xp = backend.get_xp(backend_name)
    model = TinyLM(LMConfig(LM_VOCAB, width, BLOCK_HEADS, LM_LAYERS, LM_T), LoRAConfig(r=RANK),
                   seed=seed, backend=backend_name, dtype=dtype)
    tokens = backend.host_rng(seed + 1).integers(0, LM_VOCAB, (LM_N, LM_T + 1))
    data = (xp.asarray(tokens[:, :-1].copy()), xp.asarray(tokens[:, 1:].copy()))
    return _workload("tinylm", dtype, model, None, seed, xp, tinylm_floor, data, "cross_entropy")


def tinylm_floor(model, tokens):
    """The bare products of a TinyLM step: each block's (`block_products`) and the head's."""
    N, T = tokens.shape
    x = backend.zeros((N, T, model.d_model), backend.xp_of(tokens), model.params["head.W"].dtype)
    M, d, V = N * T, model.d_model, model.vocab_size
    head = [((M, d), (d, V)), ((M, V), Transposed((d, V)))]  # logits, and dh = dlogits W^T
    return matmul_floor(block_products(model, x) * model.n_layer + head, backend.xp_of(x),
                        x.dtype)


BUILDERS = {"mlp": build_mlp, "block": build_block, "grid": build_grid}
PRODUCTS = {"mlp": mlp_products, "block": block_products}  # the floors that are bare products
WIDTHS = {"mlp": (128, 512, 2048), "block": (128, 256, 512), "grid": (64, 128, 256)}

"""The LoRA+ parameter groups, by two rules: tinylora's and PEFT's (`create_loraplus_optimizer`).

LoRA+ is nothing more than parameter groups: B at ``lr * lr_ratio``, A at ``lr``. What differs
between codebases is where everything *else* goes (biases, layer-norm gains, embeddings) and
which groups decay. Each trainable key lands in exactly one group:

    parameter kind                  rule "tinylora"         rule "peft"
    ------------------------------  ----------------------  ------------------------------------
    LoRA A (``*.A``)                "A (and others)": lr    "A": lr, decay
    LoRA B (``*.B``)                "B": lr * ratio         "B": lr * ratio, decay
    embedding LoRA (``tok_emb.A``)  by its letter (A or B)  "embedding": lr_embedding, decay
    bias ``*.b``, norm gain ``*.g`` "A (and others)": lr    "B (no decay)": lr * ratio, no decay
    other 1-D array                 "A (and others)": lr    "B": lr * ratio, decay
    other 2-D array (W, tables)     "A (and others)": lr    "A": lr, decay

The paper's reason for the fast group is B alone: eta_B = Theta(1) while eta_A = Theta(1/n),
because B's output is n-dimensional and its input Z_A has r coordinates. Nothing in the paper
speaks for biases and norms; PEFT (and the authors' code) send every 1-D tensor to B's rate,
tinylora keeps them at A's rate (so that ratio 1 and every extra array is plain LoRA's).

Weight decay. ``weight_decay=None`` (the default) writes no decay into the groups, so the
optimizer's own ``weight_decay=`` reaches every group (PEFT writes ``loraplus_weight_decay``,
default 0, into every group, which silently overrode the optimizer's: PEFT #1915, axolotl
#4010). Under "peft", biases and norms never decay, whatever is asked.
"""

from __future__ import annotations

from tinylora import backend, validate

RULES = ("tinylora", "peft")
EMBEDDINGS = ("tok_emb",)  # the embedding layers that may carry LoRA factors


def times(lr, ratio):
    """lr * ratio, kept a Python float when both are numbers (no dtype promotion of float32
    runs); an array (one rate per stacked model) when either is one."""
    return float(lr) * float(ratio) if isinstance(lr, (int, float)) and isinstance(
        ratio, (int, float)) else lr * ratio


def loraplus_groups(params, lr, lr_ratio=None, weight_decay=None, rule: str = "tinylora",
                    lr_embedding: float = 1e-6, *, lr_B=None):
    """The LoRA+ parameter groups: ``*.B`` at ``lr * lr_ratio``, by `rule` (see the module's
    table): "tinylora" (every other array at ``lr``) or "peft" (PEFT's four groups, in its order).

    ``lr_ratio`` is the paper's lambda = eta_B / eta_A (PEFT's ``loraplus_lr_ratio``); 1 is plain
    LoRA. It has no default (PEFT's is required too): the best ratio depends on the init. Measured
    here (`docs/results/finetune/`, a TinyLM fine-tuned on Milton): with Init[1] (B = 0, PEFT's
    default) ratio 16 was slower than plain LoRA at d_model 64 and 128 and the tuned ratio was 0.5
    to 4; with Init[2] (A = 0) it was 64 to 512. The paper suggests 2^4 with Init[2] (RoBERTa),
    2^2..2^3 with Init[1], 2^1..2^2 for Llama. And it grows with the width n: the balanced ratio
    (and the loss-optimal one on a muP readout) like n, the loss-optimal one on a standard readout
    like n^1/2 (`docs/width_law.md`; `docs/peft.md` has the guidance in full).

    Stacks. For S stacked models (`tinylora.lab.grid`) each rate may be an array of shape
    (S, 1, 1), one per model: `lr` (A's rates) with a number or an array `lr_ratio`, or, when
    eta_A and eta_B vary independently (a grid of cells), `lr` and B's rates given directly as
    ``lr_B=`` (then no `lr_ratio`: B's rate is exactly `lr_B`, never lr * (lr_B / lr) rounded).

    `params`: a dict of arrays (or, for "tinylora", an iterable of keys). `weight_decay`: None
    (the optimizer's reaches every group) or a number written into the groups that decay.
    `lr_embedding`: the rate of embedding LoRA factors under "peft" (PEFT's
    ``loraplus_lr_embedding``, default 1e-6). Returns a list of non-empty group dicts.
    """
    rule = validate.choice(rule, "rule", RULES)
    lr = validate.learning_rate(lr)
    lr_b = rate_of_B(lr, lr_ratio, lr_B)
    decay = {} if weight_decay is None else {
        "weight_decay": validate.non_negative(weight_decay, "weight_decay")}
    if rule == "peft":
        if not isinstance(params, dict):
            validate.fail("params", "a dict of arrays (rule 'peft' reads each array's ndim)",
                          params)
        lr_embedding = validate.learning_rate(lr_embedding, "lr_embedding")
        kinds = {k: peft_kind(k, getattr(a, "ndim", 2)) for k, a in params.items()}
        groups = [("A", lr, decay), ("embedding", lr_embedding, decay), ("B", lr_b, decay),
                  ("B (no decay)", lr_b, {"weight_decay": 0.0})]
    else:
        kinds = {k: "B" if k.endswith(".B") else "A (and others)" for k in params}
        groups = [("A (and others)", lr, decay), ("B", lr_b, decay)]
    out = [{"params": [k for k in kinds if kinds[k] == name], "lr": rate, **wd, "name": name}
           for name, rate, wd in groups]
    return [g for g in out if g["params"]]


def rate_of_B(lr, lr_ratio=None, lr_B=None):
    """B's learning rate: ``lr * lr_ratio``, or `lr_B` itself when given (then `lr_ratio` must
    be None: one way to say it). Numbers or arrays."""
    if lr_B is not None:
        if lr_ratio is not None:
            validate.fail("lr_ratio", "None when lr_B is given (B's rate is lr_B, or lr * "
                          "lr_ratio, not both)", lr_ratio)
        return validate.learning_rate(lr_B, "lr_B")
    if lr_ratio is None:
        validate.fail("lr_ratio", "a number > 0, or lr_B= (no default, as in PEFT: the best "
                      "ratio depends on the init and the width; see help(loraplus_groups) or "
                      "docs/peft.md)", lr_ratio)
    if getattr(lr_ratio, "ndim", 0):  # one ratio per stacked model
        host = backend.to_numpy(lr_ratio)
        if host.dtype.kind not in "fiu" or host.size == 0 \
                or not backend.is_finite_number(host) or float(host.min()) <= 0:
            validate.fail("lr_ratio", "a finite number > 0 (or an array of them)", lr_ratio)
        return times(lr, lr_ratio)
    return times(lr, validate.positive(lr_ratio, "lr_ratio"))


def peft_kind(key: str, ndim: int) -> str:
    """The group PEFT's `create_loraplus_optimizer` gives one trainable array: "embedding" for
    an embedding layer's LoRA factors, "B" for ``lora_B`` and any other 1-D array that decays,
    "B (no decay)" for biases and layer-norm arrays (1-D, excluded from decay), else "A"."""
    layer, _, leaf = key.rpartition(".")
    if layer in EMBEDDINGS and leaf in ("A", "B"):
        return "embedding"
    if leaf in ("b", "g"):  # a bias, a layer-norm gain or shift: PEFT's no-decay names
        return "B (no decay)"
    if leaf == "B" or ndim == 1:
        return "B"
    return "A"

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

from tinylora import validate

RULES = ("tinylora", "peft")
EMBEDDINGS = ("tok_emb",)  # the embedding layers that may carry LoRA factors


def times(lr, ratio):
    """lr * ratio, kept a Python float when lr is one (no dtype promotion of float32 runs)."""
    return float(lr) * float(ratio) if isinstance(lr, (int, float)) else lr * ratio


def loraplus_groups(params, lr: float, lr_ratio: float = 16.0, weight_decay=None,
                    rule: str = "tinylora", lr_embedding: float = 1e-6):
    """The LoRA+ parameter groups: ``*.B`` at ``lr * lr_ratio``, by `rule` (see the module's
    table): "tinylora" (every other array at ``lr``) or "peft" (PEFT's four groups, in its order).

    ``lr_ratio`` is the paper's lambda = eta_B / eta_A (PEFT's ``loraplus_lr_ratio``). Its default
    16 = 2^4 is the value Hayou, Ghosh and Yu suggest (RoBERTa, Init[2]); summaries that print
    "24" lost the superscript of 2^4. The best ratio grows with the width n, so no single value
    is right for every width: the balanced ratio (and the loss-optimal one on a muP readout)
    like n, the loss-optimal one on a standard readout like n^1/2 (`docs/width_law.md`; measure
    it with `tinylora balance` and `tinylora width-sweep`). A ratio of 1 is plain LoRA.

    `params`: a dict of arrays (or, for "tinylora", an iterable of keys). `weight_decay`: None
    (the optimizer's reaches every group) or a number written into the groups that decay.
    `lr_embedding`: the rate of embedding LoRA factors under "peft" (PEFT's
    ``loraplus_lr_embedding``, default 1e-6). Returns a list of non-empty group dicts.
    """
    rule = validate.choice(rule, "rule", RULES)
    lr = validate.learning_rate(lr)
    lr_ratio = validate.positive(lr_ratio, "lr_ratio")
    decay = {} if weight_decay is None else {
        "weight_decay": validate.non_negative(weight_decay, "weight_decay")}
    if rule == "peft":
        if not isinstance(params, dict):
            validate.fail("params", "a dict of arrays (rule 'peft' reads each array's ndim)",
                          params)
        lr_embedding = validate.learning_rate(lr_embedding, "lr_embedding")
        kinds = {k: peft_kind(k, getattr(p, "ndim", 2)) for k, p in params.items()}
        groups = [("A", lr, decay), ("embedding", lr_embedding, decay),
                  ("B", times(lr, lr_ratio), decay),
                  ("B (no decay)", times(lr, lr_ratio), {"weight_decay": 0.0})]
    else:
        kinds = {k: "B" if k.endswith(".B") else "A (and others)" for k in params}
        groups = [("A (and others)", lr, decay), ("B", times(lr, lr_ratio), decay)]
    out = [{"params": [k for k in kinds if kinds[k] == name], "lr": rate, **wd, "name": name}
           for name, rate, wd in groups]
    return [g for g in out if g["params"]]


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

"""Lesson 9's exercises, solved. Try them in the lesson first."""


def peft_group(key, ndim, lr, lr_ratio, lr_embedding=1e-6):
    """-> (group name, learning rate) of one trainable array under PEFT's LoRA+ rule."""
    layer, _, leaf = key.rpartition(".")
    if layer == "tok_emb" and leaf in ("A", "B"):  # LoRA on an embedding layer
        return "embedding", lr_embedding
    if leaf in ("b", "g"):  # a bias or a norm array: PEFT's no-decay names
        return "B (no decay)", lr * lr_ratio
    if leaf == "B" or ndim == 1:  # lora_B, and any other 1-D array
        return "B", lr * lr_ratio
    return "A", lr  # lora_A, and every other 2-D array (a trained W, a table)


def matched_B_decay(wd, lr_ratio):
    """The weight decay of B's group under LoRA+ that gives plain LoRA's per-step decay."""
    return wd / lr_ratio  # B shrinks by (lr * lr_ratio) * wd_B per step; plain LoRA by lr * wd


def treated_differently_at_ratio_1(key):
    """True when PEFT's rule at lr_ratio 1 gives `key` another rate or decay than plain LoRA."""
    layer, _, leaf = key.rpartition(".")
    if layer == "tok_emb" and leaf in ("A", "B"):
        return True  # the embedding group: lr_embedding = 1e-6, not lr
    # Biases and norm arrays run at lr * 1 = lr but never decay; every other array (A, B, the
    # head's W, the position table, 2-D) runs at lr with the optimizer's decay, as plain LoRA.
    return leaf in ("b", "g")


# Inline question: B's group decayed 16 times faster than A's (if the 0.01 reached it at all:
# PEFT's groups carry loraplus_weight_decay, 0 by default, so the Trainer's 0.01 decayed
# nothing); the biases trained at 16 x lr without decay. With Init[1] the records found ratio 16
# slower than tuned plain LoRA at every width and a tuned ratio of 0.5 to 4: try lr_ratio 1 to 4,
# with lr tuned for each.

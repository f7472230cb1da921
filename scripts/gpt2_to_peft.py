"""GPT-2-format weights in, LoRA+ fine-tuning, a PEFT adapter out: end to end, on a small random
GPT-2 made here (no download).

    python scripts/gpt2_to_peft.py [--out DIR] [--steps 60]

1. transformers makes a small random `GPT2LMHeadModel` and saves it (`save_pretrained`);
2. `tinylora.port.load_gpt2` reads that folder into a TinyLM with LoRA on q, v and fc1;
3. LoRA+ fine-tuning in NumPy: AdamW, B at 16 times A's rate, warm-up then cosine decay;
4. `tinylora.port.export_peft` writes the adapter as a PEFT folder;
5. where peft is installed, `PeftModel.from_pretrained` loads it onto the GPT-2 and its logits
   are compared with tinylora's.

It needs torch and transformers for step 1 only (tinylora reads the files with NumPy, and
safetensors); without them it says so and exits 0. The files stay in --out when given.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, default=None, help="keep the files here (default: a "
                   "temporary folder, removed at the end)")
    p.add_argument("--steps", type=int, default=60, help="fine-tuning steps (default 60)")
    args = p.parse_args(argv)
    try:
        import torch
        import transformers
    except ImportError as err:
        print(f"skipped: this example needs torch and transformers to make a GPT-2 ({err}); "
              "pip install torch transformers peft")
        return 0
    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
        return run(args.out, args.steps, torch, transformers)
    with tempfile.TemporaryDirectory(prefix="gpt2_to_peft-") as out:
        return run(Path(out), args.steps, torch, transformers)


def run(out: Path, steps: int, torch, transformers) -> int:
    from tinylora import AdamW, LoRAConfig, loraplus_groups, loss_and_grads
    from tinylora.port import export_peft, load_gpt2
    from tinylora.schedule import Schedule

    # 1. a small random GPT-2, saved the way Hugging Face saves one
    transformers.logging.set_verbosity_error()
    torch.manual_seed(0)
    config = transformers.GPT2Config(vocab_size=96, n_positions=32, n_embd=64, n_layer=2,
                                     n_head=4, bos_token_id=0, eos_token_id=0)
    transformers.GPT2LMHeadModel(config).save_pretrained(out / "gpt2")
    print(f"1. GPT-2 saved: {sorted(p.name for p in (out / 'gpt2').iterdir())}")

    # 2. into TinyLM, with LoRA (token ids: GPT-2's tokenizer's for a real GPT-2; random here)
    lm = load_gpt2(out / "gpt2", LoRAConfig(r=4, alpha=8, targets=("q", "v", "fc1")))
    print(f"2. {lm}")

    # 3. LoRA+: B at 16 x A's rate, AdamW, 10 warm-up steps then cosine, on a repeating text
    rng = np.random.default_rng(0)
    text = np.tile(rng.integers(0, 96, size=12), 40)  # a 12-token phrase, over and over
    params = lm.trainable_params()
    opt = AdamW(params, groups=loraplus_groups(params, lr=2e-3, lr_ratio=16))
    sched = Schedule(opt, steps, warmup=10, decay="cosine")
    losses = []
    for t in range(steps):
        starts = rng.integers(0, len(text) - 17, size=8)
        batch = np.stack([text[s:s + 17] for s in starts])  # [8, 17]: inputs and next tokens
        loss, grads = loss_and_grads(lm, batch[:, :-1], batch[:, 1:], loss="cross_entropy")
        sched.apply(t)
        opt.step(grads)
        losses.append(float(loss))
    print(f"3. LoRA+ fine-tuning (AdamW, A at 2e-3, B at 3.2e-2, warm-up and cosine), {steps} "
          f"steps: cross-entropy {losses[0]:.3f} -> {losses[-1]:.3f}")

    # 4. out to PEFT
    folder = export_peft(lm, out / "adapter", base_model_name_or_path=str(out / "gpt2"))
    print(f"4. PEFT adapter: {sorted(p.name for p in folder.iterdir())}")

    # 5. PEFT loads it onto GPT-2 and computes what tinylora computes
    try:
        from peft import PeftModel
    except ImportError:
        print("5. skipped: peft is not installed (pip install peft) to load the adapter")
        return 0
    base = transformers.GPT2LMHeadModel.from_pretrained(out / "gpt2")
    peft_model = PeftModel.from_pretrained(base, folder).eval()
    tokens = text[None, :24]
    with torch.no_grad():
        theirs = peft_model(torch.tensor(tokens)).logits.numpy()
    ours = lm.forward(tokens)[0]
    diff = float(np.abs(ours - theirs).max() / np.abs(theirs).max())
    print(f"5. PEFT's logits against tinylora's: largest difference {diff:.1e} of the largest "
          "logit (float32)")
    return 0 if diff < 1e-4 else 1


if __name__ == "__main__":
    sys.exit(main())

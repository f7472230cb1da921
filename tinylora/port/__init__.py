"""Porting, both ways: GPT-2-format weights into `TinyLM` (`tinylora.port.gpt2`), LoRA adapters
out to PEFT and back (`tinylora.port.peft`). The reference never imports this package.

    from tinylora.port import export_peft, load_gpt2
    lm = load_gpt2("gpt2-folder", LoRAConfig(r=8, targets=("q", "v")))   # a TinyLM
    ...                                                                   # fine-tune it
    export_peft(lm, "adapter")                                            # PEFT loads it
"""

from tinylora.port.gpt2 import load_gpt2, read_gpt2
from tinylora.port.peft import export_peft, import_peft, load_peft

__all__ = ["export_peft", "import_peft", "load_gpt2", "load_peft", "read_gpt2"]

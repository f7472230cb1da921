"""tinylora: LoRA and LoRA+ in pure NumPy, every gradient derived by hand.

The public names; each lives in the module that owns its idea.
"""

from tinylora.backend import get_xp, to_numpy, use_backend
from tinylora.block import BlockConfig, TransformerBlock
from tinylora.groups import loraplus_groups
from tinylora.lora import LoRAConfig
from tinylora.models import LoRAMLP, MLPConfig
from tinylora.optim import SGD, Adam, AdamW
from tinylora.train import loss_and_grads, train
from tinylora.transformer import LMConfig, TinyLM

__version__ = "0.2.0"  # the one place the version is written (pyproject reads it)

__all__ = ["Adam", "AdamW", "BlockConfig", "LMConfig", "LoRAConfig", "LoRAMLP", "MLPConfig",
           "SGD", "get_xp", "loraplus_groups", "loss_and_grads", "to_numpy", "train",
           "use_backend", "TinyLM", "TransformerBlock"]

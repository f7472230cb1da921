"""PEFT adapters out and in: `export_peft` writes a folder PEFT loads; `import_peft` reads one.

A PEFT LoRA adapter is a folder of two files:

    adapter_config.json         PEFT's LoraConfig: {"peft_type": "LORA", "r": 8,
                                "lora_alpha": 8.0, "target_modules": [...], ...}
    adapter_model.safetensors   the factors in PEFT's keys and layouts (`peft_layout`)

Files. The weights go to ``adapter_model.safetensors`` when the ``safetensors`` package is
installed (``pip install 'tinylora[port]'``; PEFT depends on it, so wherever PEFT runs, it is
there): **the file PEFT loads**. Without it they go to ``adapter_model.npz`` (NumPy, the same
keys and layouts), which `import_peft` reads and PEFT does not (convert it where safetensors is
installed: ``safetensors.numpy.save_file(...)`` of its arrays, without its ``__meta__`` entry).
Either file also records tinylora's own settings (`LoRAModel.settings`: the model's
configuration, init, the targets by tinylora's names), as safetensors metadata ``"tinylora"``
or the .npz's ``__meta__`` entry; PEFT ignores it. ``init_lora_weights`` is written true (PEFT's
default, B = 0): it tells PEFT how to start a new adapter, never how to load this one; tinylora's
Init[2] (A = 0) has no PEFT flag and is kept in the record.

    export_peft(lm, "adapter")                      # a folder PEFT loads
    lora, arrays = import_peft("adapter")           # LoRAConfig, factors in tinylora's keys
    load_peft(lm, "adapter")                        # into a model, all or nothing
"""

from __future__ import annotations

import json
from pathlib import Path

from tinylora import checkpoint, validate
from tinylora.port.gpt2 import has_safetensors
from tinylora.port.peft_layout import check_model, from_peft, peft_config, to_peft
from tinylora.run.records import write_text

CONFIG = "adapter_config.json"
WEIGHTS = {"safetensors": "adapter_model.safetensors", "npz": "adapter_model.npz"}


def export_peft(model, path, *, base_model_name_or_path: str | None = None,
                format: str | None = None) -> Path:
    """Write `model`'s adapter (a `TinyLM` or an unstacked `LoRAMLP`) as a PEFT LoRA folder:
    adapter_config.json and the weights, ``adapter_model.safetensors`` (format "safetensors",
    the default where the package is installed: the file PEFT loads) or ``adapter_model.npz``
    (format "npz", the default without it). The folder is created when missing; a weights file
    of the other format left there from an earlier export is removed. -> the folder."""
    fmt = _format(format)
    arrays, config = to_peft(model), peft_config(model, base_model_name_or_path)
    folder = Path(path)
    folder.mkdir(parents=True, exist_ok=True)
    if fmt == "safetensors":
        from safetensors.numpy import save_file

        save_file(arrays, str(folder / WEIGHTS[fmt]),
                  metadata={"format": "pt", "tinylora": json.dumps(model.settings())})
    else:
        checkpoint.save(arrays, folder / WEIGHTS[fmt], model.settings())
    for other in set(WEIGHTS) - {fmt}:
        (folder / WEIGHTS[other]).unlink(missing_ok=True)
    write_text(folder / CONFIG, json.dumps(config, indent=2) + "\n")  # atomic
    return folder


def import_peft(path) -> tuple:
    """Read a PEFT LoRA folder -> (its `LoRAConfig`, its factors in tinylora's keys and
    layouts: ``<layer>.A`` (d_in, r), ``<layer>.B`` (r, d_out), NumPy). An adapter tinylora
    wrote comes back bit for bit, with its LoRAConfig as it was."""
    lora, arrays, _, _ = _import(path)
    return lora, arrays


def load_peft(model, path) -> None:
    """`import_peft` into `model`, all or nothing. Refused, naming every difference, when the
    adapter's r, alpha, rslora or targets differ from `model`'s, or (for an adapter tinylora
    wrote) the model's class or configuration; the model is then left as it was."""
    check_model(model)
    model.refuse_if_merged("load")
    lora, arrays, record, where = _import(path)
    theirs = {**(record or model.settings()), "lora": {"r": lora.r, "alpha": lora.alpha,
                                                       "rslora": lora.rslora},
              "targets": sorted({k.rsplit(".", 1)[0] for k in arrays})}
    checkpoint.check_fits(theirs, model.settings(), True, where)
    checkpoint.load(model.params, model.adapter_keys(), arrays, where)


def _import(path) -> tuple:
    """-> (LoRAConfig, arrays in tinylora's keys, tinylora's record or None, the weights file)."""
    folder = Path(path)
    if not (folder / CONFIG).is_file():
        validate.fail("path", f"a PEFT adapter folder holding {CONFIG}", str(path))
    found = [folder / f for f in WEIGHTS.values() if (folder / f).is_file()]
    if not found:
        validate.fail("path", f"a PEFT adapter folder holding {' or '.join(WEIGHTS.values())}",
                      str(path))
    file = found[0] if len(found) == 1 or has_safetensors() else found[1]
    if file.suffix == ".npz":
        arrays, record = checkpoint.read(file)
    else:
        _format("safetensors")  # the package, or a clear error
        from safetensors import safe_open

        with safe_open(str(file), framework="np") as f:
            arrays = {k: f.get_tensor(k) for k in f.keys()}
            text = (f.metadata() or {}).get("tinylora")
        record = None if text is None else json.loads(text)
    config = json.loads((folder / CONFIG).read_text())
    if not isinstance(config, dict):
        validate.fail(f"{folder / CONFIG}", "a JSON object (PEFT's LoraConfig)", config)
    lora, arrays = from_peft(config, arrays, record, str(file))
    return lora, arrays, record, str(file)


def _format(format: str | None) -> str:
    """The weights' format, "safetensors" or "npz"; None: safetensors where it is installed."""
    if format is None:
        return "safetensors" if has_safetensors() else "npz"
    validate.choice(format, "format", tuple(WEIGHTS))
    if format == "safetensors" and not has_safetensors():
        raise ImportError("format: 'safetensors' needs the safetensors package (pip install "
                          "'tinylora[port]'); format='npz' needs nothing more")
    return format

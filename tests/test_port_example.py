"""The example `scripts/gpt2_to_peft.py` (GPT-2 weights in, LoRA+ fine-tuning, a PEFT adapter
out): it runs end to end where torch and transformers are installed, and elsewhere says what it
needs and exits 0."""

import importlib.util
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "gpt2_to_peft.py"


def example():
    spec = importlib.util.spec_from_file_location("gpt2_to_peft", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_without_transformers_the_example_says_so_and_exits_0(monkeypatch, capsys):
    """With torch and transformers missing the script prints what to install and returns 0."""
    monkeypatch.setitem(sys.modules, "torch", None)
    monkeypatch.setitem(sys.modules, "transformers", None)
    assert example().main([]) == 0
    assert capsys.readouterr().out.startswith("skipped: this example needs torch and "
                                              "transformers")


def test_the_example_runs_end_to_end(tmp_path, capsys):
    """A random GPT-2 saved, loaded into TinyLM, fine-tuned with LoRA+ (the loss falls),
    exported; PEFT (where installed) loads the adapter and gives tinylora's logits."""
    pytest.importorskip("torch", reason="the example makes its GPT-2 with PyTorch")
    pytest.importorskip("transformers", reason="the example makes its GPT-2 with transformers")
    assert example().main(["--out", str(tmp_path), "--steps", "12"]) == 0
    out = capsys.readouterr().out
    start, end = (float(x) for x in out.split("cross-entropy ")[1].split()[0:3:2])
    assert end < start
    assert (tmp_path / "adapter" / "adapter_config.json").exists()
    assert "5. PEFT's logits against tinylora's" in out or "5. skipped: peft" in out

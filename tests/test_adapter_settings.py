"""An adapter file knows its settings: `save` records the model's class and configuration and its
LoRAConfig (r, alpha, rslora, init, dropout, targets); `load` refuses a file that does not fit
the model, naming what differs, and a file from before settings still loads by its arrays."""

import numpy as np
import pytest

from tinylora import LMConfig, LoRAConfig, LoRAMLP, MLPConfig, TinyLM, checkpoint
from tinylora.gradcheck import randomize_lora

CONFIG = LMConfig(vocab_size=13, d_model=8, n_head=2, n_layer=2, context=6)
LORA = LoRAConfig(r=2, alpha=5.0, rslora=True, init="zero_A", dropout=0.1,
                  targets=("tok_emb", "q", "fc1"))


def trained(config=CONFIG, lora=LORA, seed=0):
    lm = TinyLM(config, lora, seed=seed)
    randomize_lora(lm, seed=3)
    return lm


def snapshot(model):
    return {k: v.copy() for k, v in model.params.items()}


def test_an_adapter_file_records_the_model_and_its_lora_settings(tmp_path):
    """The file's settings: the model's class and every field of its config and LoRAConfig, and
    the layers with LoRA; the arrays are the factors alone."""
    lm = trained()
    arrays, settings = checkpoint.read(lm.save(tmp_path / "adapter"))
    assert sorted(arrays) == sorted(lm.adapter_keys())
    assert settings == {
        "model": "TinyLM",
        "config": {"vocab_size": 13, "d_model": 8, "n_head": 2, "n_layer": 2, "context": 6,
                   "d_ff": 32},
        "lora": {"r": 2, "alpha": 5.0, "rslora": True, "init": "zero_A", "dropout": 0.1,
                 "targets": ["tok_emb", "q", "fc1"]},
        "targets": ["tok_emb", "blocks.0.attn.q", "blocks.0.mlp.fc1", "blocks.1.attn.q",
                    "blocks.1.mlp.fc1"]}


def test_a_model_rebuilt_from_the_files_settings_loads_it_bit_for_bit(tmp_path):
    """LMConfig(**settings['config']) and LoRAConfig(**settings['lora']) rebuild the model the
    file came from: equal settings, and the factors load bit for bit."""
    lm = trained()
    path = lm.save(tmp_path / "adapter")
    _, settings = checkpoint.read(path)
    lora, config = LoRAConfig(**settings["lora"]), LMConfig(**settings["config"])
    assert (lora, config) == (LORA, CONFIG)
    fresh = TinyLM(config, lora, seed=0)
    fresh.load(path)
    assert all(np.array_equal(fresh.params[k], lm.params[k]) for k in lm.adapter_keys())


@pytest.mark.parametrize("config, lora, message", [
    (LMConfig(13, 8, 4, 2, 6), LORA, r"config.n_head is 2 in the file, 4 in the model"),
    (CONFIG, LoRAConfig(r=2, alpha=4.0, rslora=True, targets=LORA.targets),
     r"lora.alpha is 5.0 in the file, 4.0 in the model"),
    (CONFIG, LoRAConfig(r=2, alpha=5.0, targets=LORA.targets),
     r"lora.rslora is True in the file, False in the model"),
    (CONFIG, LoRAConfig(r=2, alpha=5.0, rslora=True, targets=("tok_emb", "q", "fc2")),
     r"targets is \[.*'blocks.0.mlp.fc1'.*\] in the file, \[.*'blocks.0.mlp.fc2'.*\] in"),
    (LMConfig(13, 8, 2, 3, 6), LORA, r"config.n_layer is 2 in the file, 3 in the model; "
                                     r"targets is"),
])
def test_load_refuses_a_file_that_does_not_fit_naming_what_differs(tmp_path, config, lora,
                                                                   message):
    """Another n_head (the same shapes: only the settings can tell), alpha, scale rule,
    targets or depth: refused with each difference named, the model left as it was."""
    path = trained().save(tmp_path / "adapter")
    model = trained(config, lora, seed=1)
    before = snapshot(model)
    with pytest.raises(ValueError, match=rf"the file does not fit the model: .*{message}"):
        model.load(path)
    assert all(np.array_equal(model.params[k], v) for k, v in before.items())


def test_another_models_file_is_refused_by_its_class(tmp_path):
    """A LoRAMLP's adapter into a TinyLM: the model's class differs, and the error says so."""
    path = LoRAMLP(MLPConfig(8, 8, 8), LoRAConfig(r=2)).save(tmp_path / "mlp")
    with pytest.raises(ValueError, match=r"model is 'LoRAMLP' in the file, 'TinyLM' in the model"):
        trained().load(path)


def test_init_and_dropout_are_recorded_but_not_compared(tmp_path):
    """init and dropout say how the factors were trained, not what they compute: a file of an
    Init[2], dropout-0.1 run loads into an Init[1] model without dropout."""
    lm = trained()
    plain = TinyLM(CONFIG, LoRAConfig(r=2, alpha=5.0, rslora=True, targets=LORA.targets))
    plain.load(lm.save(tmp_path / "adapter"))
    assert all(np.array_equal(plain.params[k], lm.params[k]) for k in lm.adapter_keys())


def test_a_file_without_settings_loads_by_its_arrays_alone(tmp_path):
    """A file saved before files held settings (bare arrays) still loads: names and shapes are
    checked as before, nothing else."""
    lm = trained()
    np.savez(tmp_path / "old.npz", **{k: lm.params[k] for k in lm.adapter_keys()})
    fresh = TinyLM(CONFIG, LoRAConfig(r=2, targets=LORA.targets))
    fresh.load(tmp_path / "old.npz")
    assert all(np.array_equal(fresh.params[k], lm.params[k]) for k in lm.adapter_keys())


def test_a_base_file_compares_the_model_not_the_lora(tmp_path):
    """The base arrays saved from a model without LoRA load into one with LoRA (the pretrain
    then fine-tune flow): for base keys only the model's class and configuration are compared."""
    base = TinyLM(CONFIG, LoRAConfig(targets=()), trainable="all", seed=4)
    path = base.save(tmp_path / "base", keys=base.base_keys())
    lm = trained()
    lm.load(path, keys=lm.base_keys())
    assert all(np.array_equal(lm.params[k], base.params[k]) for k in base.base_keys())
    with pytest.raises(ValueError, match=r"config.d_model is 8 in the file, 16 in the model"):
        other = TinyLM(LMConfig(13, 16, 2, 2, 6), LoRAConfig(targets=()))
        other.load(path, keys=other.base_keys())


def test_settings_that_are_not_json_are_one_clear_error(tmp_path):
    """A file whose settings entry is not JSON text is refused, naming the file and the entry."""
    lm = trained()
    np.savez(tmp_path / "bad.npz", __meta__=np.array("{not json"),
             **{k: lm.params[k] for k in lm.adapter_keys()})
    before = snapshot(lm)
    with pytest.raises(ValueError, match=r"bad.npz: entry '__meta__': expected the settings as "
                                         r"JSON text"):
        lm.load(tmp_path / "bad.npz")
    assert all(np.array_equal(lm.params[k], v) for k, v in before.items())

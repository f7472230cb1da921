"""tinylora.port against the real thing: Hugging Face `GPT2LMHeadModel` (a small random
`GPT2Config`, saved with `save_pretrained` into tmp_path: no download) and PEFT loading the
adapters tinylora exports. Skipped, with the reason, where torch, transformers or peft are
missing (CI installs none of them; `pip install torch transformers peft safetensors` to run)."""

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="PyTorch is optional; these comparisons need it")
transformers = pytest.importorskip("transformers", reason="transformers is optional; these "
                                   "comparisons need it")
pytest.importorskip("safetensors", reason="save_pretrained writes safetensors")

from tinylora import LoRAConfig, LoRAMLP, MLPConfig, loss_and_grads  # noqa: E402
from tinylora.gradcheck import randomize_lora  # noqa: E402
from tinylora.port import export_peft, load_gpt2, load_peft  # noqa: E402
from tinylora.port.peft_layout import to_peft  # noqa: E402

V, N_CTX, D, L, H = 61, 16, 24, 2, 4
TOKENS = np.random.default_rng(0).integers(0, V, size=(3, 12))
ALL = ("tok_emb", "q", "k", "v", "o", "fc1", "fc2")


def close(ours, theirs, tol=2e-5, floor=1.0):
    """Equal to float32 tolerance: the largest difference within tol of the largest value
    (or of `floor`, when that is larger)."""
    ours, theirs = np.asarray(ours, dtype=np.float64), np.asarray(theirs, dtype=np.float64)
    return np.abs(ours - theirs).max() <= tol * max(floor, np.abs(theirs).max())


@pytest.fixture(scope="module")
def gpt2_folder(tmp_path_factory):
    """A small random GPT-2 (biases and layer norms random too), saved by save_pretrained."""
    transformers.logging.set_verbosity_error()
    torch.manual_seed(0)
    config = transformers.GPT2Config(vocab_size=V, n_positions=N_CTX, n_embd=D, n_layer=L,
                                     n_head=H, bos_token_id=0, eos_token_id=0)
    model = transformers.GPT2LMHeadModel(config)
    with torch.no_grad():
        for p in model.parameters():
            if p.ndim == 1:  # biases and layer-norm gains: not 0 and 1
                p.add_(0.2 * torch.randn_like(p))
    folder = tmp_path_factory.mktemp("gpt2")
    model.save_pretrained(folder)
    return folder


def hf_model(folder):
    return transformers.GPT2LMHeadModel.from_pretrained(folder).eval()


def test_tinylm_from_gpt2_gives_gpt2lmheadmodels_logits(gpt2_folder):
    """load_gpt2 on a save_pretrained folder: the same logits as GPT2LMHeadModel (float32
    tolerance; tinylora computes in float64 from the same float32 weights)."""
    lm = load_gpt2(gpt2_folder, LoRAConfig(r=2))
    with torch.no_grad():
        theirs = hf_model(gpt2_folder)(torch.tensor(TOKENS)).logits.numpy()
    assert close(lm.forward(TOKENS)[0], theirs)


def peft_model(gpt2_folder, adapter, trainable=False):
    from peft import PeftModel

    return PeftModel.from_pretrained(hf_model(gpt2_folder), adapter, is_trainable=trainable)


def with_random_lora(gpt2_folder, lora):
    lm = load_gpt2(gpt2_folder, lora)
    randomize_lora(lm, seed=1)  # B != 0: the LoRA path changes the output
    for k in lm.base_keys():  # randomize_lora also moved biases and gains: GPT-2's back
        lm.params[k][...] = load_gpt2(gpt2_folder).params[k]
    return lm


@pytest.mark.parametrize("lora", [LoRAConfig(r=2, alpha=3.0, targets=ALL),
                                  LoRAConfig(r=2, rslora=True, targets=("q", "v")),
                                  LoRAConfig(r=3, alpha=1.5, targets=("k", "fc2"))],
                         ids=["all-and-wte", "qv-rslora", "k-fc2"])
def test_peft_loads_the_exported_adapter_and_computes_tinyloras_outputs(gpt2_folder, tmp_path,
                                                                        lora):
    """PeftModel.from_pretrained(GPT2LMHeadModel, export_peft(lm)) gives lm's logits (float32
    tolerance), which the LoRA moved away from GPT-2's: q, k, v fused into c_attn with PEFT's
    rank and alpha patterns, any subset of them, rsLoRA, the token table's embedding LoRA."""
    pytest.importorskip("peft", reason="peft is optional; this comparison needs it")
    lm = with_random_lora(gpt2_folder, lora)
    pm = peft_model(gpt2_folder, export_peft(lm, tmp_path / "adapter")).eval()
    ours = lm.forward(TOKENS)[0]
    with torch.no_grad():
        theirs = pm(torch.tensor(TOKENS)).logits.numpy()
        base = hf_model(gpt2_folder)(torch.tensor(TOKENS)).logits.numpy()
    assert close(ours, theirs)
    assert not close(ours, base, tol=1e-3)  # the adapter was on


def test_get_peft_model_with_the_exported_config_and_weights_computes_the_same(gpt2_folder,
                                                                              tmp_path):
    """get_peft_model(GPT2, LoraConfig.from_pretrained(folder)) + the weights file: the same
    logits as tinylora (the config alone rebuilds PEFT's modules, shapes and scales)."""
    peft = pytest.importorskip("peft", reason="peft is optional; this comparison needs it")
    lm = with_random_lora(gpt2_folder, LoRAConfig(r=2, alpha=5.0, targets=ALL))
    folder = export_peft(lm, tmp_path / "adapter")
    pm = peft.get_peft_model(hf_model(gpt2_folder), peft.LoraConfig.from_pretrained(folder))
    result = peft.set_peft_model_state_dict(pm, peft.utils.load_peft_weights(str(folder)))
    assert not result.unexpected_keys
    with torch.no_grad():
        theirs = pm.eval()(torch.tensor(TOKENS)).logits.numpy()
    assert close(lm.forward(TOKENS)[0], theirs)


def test_lora_factor_gradients_match_peft_on_gpt2(gpt2_folder, tmp_path):
    """One step's gradients of every LoRA factor (mean next-token cross-entropy), tinylora's
    against PyTorch autograd through PEFT on GPT2LMHeadModel, to float32 tolerance; c_attn's
    gradient compared block by block (its off-diagonal blocks are PEFT's own parameters). The
    tolerance is float32's through two blocks: 3e-4 of the largest entry (measured: 6e-5)."""
    pytest.importorskip("peft", reason="peft is optional; this comparison needs it")
    lm = with_random_lora(gpt2_folder, LoRAConfig(r=2, alpha=3.0, targets=ALL))
    _, grads = loss_and_grads(lm, TOKENS[:, :-1], TOKENS[:, 1:], loss="cross_entropy")
    pm = peft_model(gpt2_folder, export_peft(lm, tmp_path / "adapter"), trainable=True)
    logits = pm(torch.tensor(TOKENS[:, :-1])).logits
    torch.nn.functional.cross_entropy(logits.reshape(-1, V),
                                      torch.tensor(TOKENS[:, 1:]).reshape(-1)).backward()
    theirs = {n.replace(".default", ""): p.grad.numpy() for n, p in pm.named_parameters()
              if p.grad is not None}
    for k in lm.adapter_keys():  # the export of factors that are the gradients: PEFT's layout
        lm.params[k][...] = grads[k]
    ours = to_peft(lm)
    for k in lm.adapter_keys():
        lm.params[k][...] = 1.0
    mask = to_peft(lm)  # 1 where a tinylora factor sits, 0 in c_attn's off-diagonal blocks
    assert sorted(ours) == sorted(theirs)
    for k in ours:
        where = mask[k] != 0
        assert close(ours[k][where], theirs[k][where], tol=3e-4, floor=0.0), k


def test_an_adapter_trained_in_peft_loads_into_tinylm(gpt2_folder, tmp_path):
    """PEFT's own LoRA (one rank-r c_attn, c_fc; random non-zero factors) saved with
    save_pretrained loads with load_peft (q, k, v share its A) and gives PEFT's logits."""
    peft = pytest.importorskip("peft", reason="peft is optional; this comparison needs it")
    torch.manual_seed(3)
    pm = peft.get_peft_model(hf_model(gpt2_folder), peft.LoraConfig(
        r=2, lora_alpha=6, target_modules=["c_attn", "c_fc"], fan_in_fan_out=True,
        init_lora_weights=False))  # False: B random too, the adapter is not the identity
    pm.save_pretrained(tmp_path / "trained")
    lm = load_gpt2(gpt2_folder, LoRAConfig(r=2, alpha=6, targets=("q", "k", "v", "fc1")))
    load_peft(lm, tmp_path / "trained")
    with torch.no_grad():
        theirs = pm.eval()(torch.tensor(TOKENS)).logits.numpy()
    assert close(lm.forward(TOKENS)[0], theirs)


def test_an_mlp_adapter_loads_into_a_pytorch_mirror_with_peft(tmp_path):
    """A LoRAMLP's export loaded by PEFT into a PyTorch mirror (nn.Linear fc1, fc2 with the same
    weights, ReLU between) gives the same outputs (float32 tolerance: PEFT's factors are)."""
    peft = pytest.importorskip("peft", reason="peft is optional; this comparison needs it")
    mlp = LoRAMLP(MLPConfig(6, 10, 4, bias=True), LoRAConfig(r=2, alpha=3.0))
    randomize_lora(mlp, seed=2)

    class Mirror(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.fc1, self.fc2 = torch.nn.Linear(6, 10), torch.nn.Linear(10, 4)
            with torch.no_grad():
                for name in ("fc1", "fc2"):
                    getattr(self, name).weight.copy_(torch.tensor(mlp.params[f"{name}.W"].T))
                    getattr(self, name).bias.copy_(torch.tensor(mlp.params[f"{name}.b"]))

        def forward(self, x):
            return self.fc2(torch.relu(self.fc1(x)))

    mirror = peft.PeftModel.from_pretrained(Mirror().double(), export_peft(mlp, tmp_path / "a"))
    x = np.random.default_rng(4).standard_normal((5, 6))
    with torch.no_grad():
        theirs = mirror(torch.tensor(x)).numpy()
    assert close(mlp.forward(x)[0], theirs)

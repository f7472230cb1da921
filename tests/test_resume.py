"""Training resumes: an optimizer's state (moments, step count, groups, rates) goes to a file and
back, and a run interrupted after k steps, rebuilt from its files in fresh objects, ends bit for
bit where the uninterrupted run ends (NumPy, float64)."""

import numpy as np
import pytest

from tinylora import SGD, Adam, AdamW, LMConfig, LoRAConfig, TinyLM, checkpoint, loss_and_grads
from tinylora.groups import loraplus_groups
from tinylora.schedule import Schedule

CONFIG = LMConfig(vocab_size=11, d_model=8, n_head=2, n_layer=2, context=8)
LORA = LoRAConfig(r=2, alpha=3.0, init="zero_A", targets=("tok_emb", "q", "v", "fc2"))
TOKENS = np.random.default_rng(0).integers(0, 11, size=(3, 9))
TOTAL, K = 10, 4

# each setting: (optimizer class and its arguments, schedule (warmup, decay) or None)
SETTINGS = {
    "adam": (Adam, {}, None),
    "adamw-loraplus-warmup-cosine": (AdamW, {"weight_decay": 0.1}, (3, "cosine")),
    "sgd-momentum-linear": (SGD, {"momentum": 0.9}, (0, "linear")),
}


def build(setting, lora=LORA, config=CONFIG):
    """A model (base from seed 0), its optimizer (LoRA+ groups) and schedule, as a run starts."""
    cls, kwargs, sched = SETTINGS[setting]
    lm = TinyLM(config, lora, seed=0)
    params = lm.trainable_params()
    opt = cls(params, groups=loraplus_groups(params, lr=0.01, lr_ratio=4), **kwargs)
    return lm, opt, sched


def run(lm, opt, sched, start: int, stop: int):
    """Steps start .. stop - 1 of a TOTAL-step run (the schedule built afresh, as a resumed
    script builds it: its position is the optimizer's step count)."""
    schedule = Schedule(opt, TOTAL, *sched) if sched else None
    for t in range(start, stop):
        if schedule:
            schedule.apply(t)
        _, grads = loss_and_grads(lm, TOKENS[:, :-1], TOKENS[:, 1:], loss="cross_entropy")
        opt.step(grads)


@pytest.mark.parametrize("setting", sorted(SETTINGS))
def test_a_run_interrupted_and_resumed_from_files_ends_bit_for_bit_where_it_would(tmp_path,
                                                                                  setting):
    """k steps, adapter and optimizer saved to files; a fresh model built from the adapter
    file's own settings and a fresh optimizer load them; the remaining steps end with factors,
    moments and rates bit-identical to an uninterrupted run (Adam; AdamW with decay, LoRA+ and a
    warm-up/cosine schedule; SGD with momentum and linear decay)."""
    whole, whole_opt, sched = build(setting)
    run(whole, whole_opt, sched, 0, TOTAL)

    first, first_opt, _ = build(setting)
    run(first, first_opt, sched, 0, K)
    adapter, optim = first.save(tmp_path / "adapter"), first_opt.save(tmp_path / "optim")
    del first, first_opt

    _, settings = checkpoint.read(adapter)  # the model is rebuilt from the file's settings alone
    lora = LoRAConfig(**settings["lora"])
    config = LMConfig(**settings["config"])
    again, again_opt, _ = build(setting, lora, config)
    again.load(adapter)
    again_opt.load(optim)
    assert again_opt.t == K
    run(again, again_opt, sched, again_opt.t, TOTAL)

    assert all(np.array_equal(again.params[k], whole.params[k]) for k in whole.params)
    ours, theirs = again_opt.state_dict(), whole_opt.state_dict()
    assert ours["t"] == theirs["t"] == TOTAL and ours["groups"] == theirs["groups"]
    assert ours["state"].keys() == theirs["state"].keys()
    assert all(np.array_equal(ours["state"][k], theirs["state"][k]) for k in ours["state"])


def test_state_dict_holds_the_moments_step_count_and_rates_as_copies():
    """state_dict: the class, t, every group (keys, lr, weight_decay, name, the schedule's base
    initial_lr) and each moment as '<moment>.<key>', copied (a later step does not change it)."""
    lm, opt, _ = build("adamw-loraplus-warmup-cosine")
    run(lm, opt, (3, "cosine"), 0, 2)
    state = opt.state_dict()
    assert state["kind"] == "AdamW" and state["t"] == 2
    assert [(g["name"], g["initial_lr"], g["weight_decay"]) for g in state["groups"]] == [
        ("A (and others)", 0.01, 0.1), ("B", 0.04, 0.1)]
    assert sorted(state["state"]) == sorted(f"{m}.{k}" for k in lm.trainable for m in "mv")
    before = {k: a.copy() for k, a in state["state"].items()}
    run(lm, opt, None, 2, 3)
    assert all(np.array_equal(state["state"][k], before[k]) for k in before)


def test_a_schedule_built_after_a_reload_keeps_the_base_rates():
    """The base rates live in the groups (initial_lr), so a Schedule built after
    load_state_dict multiplies the base rates, not the scheduled rates the state saved."""
    lm, opt, _ = build("adamw-loraplus-warmup-cosine")
    run(lm, opt, (3, "cosine"), 0, 5)
    _, fresh, _ = build("adamw-loraplus-warmup-cosine")
    fresh.load_state_dict(opt.state_dict())
    assert [g["lr"] for g in fresh.groups] != [0.01, 0.04]  # scheduled rates, restored
    assert Schedule(fresh, TOTAL, 3, "cosine").base == [0.01, 0.04]


def test_a_stacks_array_rates_survive_the_file(tmp_path):
    """Learning rates that are arrays (a stack of models, one rate each) are saved as lists and
    come back as arrays of the parameters' dtype."""
    params = {"w": np.ones((3, 2))}
    opt = Adam(params, lr=np.array([[0.1], [0.2], [0.3]]))
    opt.step({"w": np.ones((3, 2))})
    fresh = Adam({"w": np.ones((3, 2))}, lr=0.5)
    fresh.load(opt.save(tmp_path / "optim"))
    assert np.array_equal(fresh.groups[0]["lr"], opt.groups[0]["lr"]) and fresh.t == 1


def _mutate(kind):
    def change(state):
        if kind == "class":
            state["kind"] = "Adam"
        elif kind == "groups":
            state["groups"] = state["groups"][::-1]
        elif kind == "shape":
            state["state"]["m.blocks.0.attn.q.A"] = np.zeros((3, 3))
        elif kind == "missing moment":
            del state["state"]["v.blocks.0.attn.q.A"]
        elif kind == "unknown key":
            state["state"]["m.blocks.9.attn.q.A"] = np.zeros((8, 2))
        elif kind == "step":
            state["t"] = -1
        elif kind == "rate":
            state["groups"][1]["lr"] = -1.0
        return state
    return change


@pytest.mark.parametrize("kind, message", [
    ("class", r"state\['kind'\]: expected 'AdamW', got 'Adam'"),
    ("groups", r"state\['groups'\]: expected groups of the keys"),
    ("shape", r"state\['state'\]: array 'm.blocks.0.attn.q.A' expected shape \(8, 2\), got "
              r"\(3, 3\)"),
    ("missing moment", r"state\['state'\]: .* missing \['v.blocks.0.attn.q.A'\], not expected "
                       r"\[\]"),
    ("unknown key", r"state\['state'\]: .* missing \[\], not expected \['m.blocks.9.attn.q.A'\]"),
    ("step", r"state\['t'\]: expected an integer >= 0, got -1"),
    ("rate", r"groups\[1\].lr: expected a finite learning rate >= 0"),
])
def test_a_refused_state_names_what_is_wrong_and_changes_nothing(kind, message):
    """Another optimizer's class, other groups, a moment of another shape or key, a key with m
    but no v, a bad step count or rate: refused with the entry named, the optimizer untouched."""
    lm, opt, _ = build("adamw-loraplus-warmup-cosine")
    run(lm, opt, (3, "cosine"), 0, 2)
    state = _mutate(kind)(opt.state_dict())
    before = opt.state_dict()
    with pytest.raises(ValueError, match=message):
        opt.load_state_dict(state)
    after = opt.state_dict()
    assert after["t"] == before["t"] and after["groups"] == before["groups"]
    assert all(np.array_equal(after["state"][k], before["state"][k]) for k in before["state"])


def test_a_non_finite_moment_is_refused_by_name():
    """A moment holding NaN is refused, naming it, before anything is written."""
    lm, opt, _ = build("adam")
    run(lm, opt, None, 0, 1)
    state = opt.state_dict()
    state["state"]["v.blocks.1.mlp.fc2.B"] = np.full((2, 8), np.nan)
    with pytest.raises(ValueError, match=r"state\['state'\]: array 'v.blocks.1.mlp.fc2.B': "
                                         r"expected finite values"):
        opt.load_state_dict(state)
    assert opt.t == 1


def test_an_adapter_file_is_not_an_optimizers_file(tmp_path):
    """opt.load of a model's file says which class of state it expected."""
    lm, opt, _ = build("adam")
    path = lm.save(tmp_path / "adapter")
    with pytest.raises(ValueError, match=r"state\['kind'\]: expected 'Adam', got None"):
        opt.load(path)

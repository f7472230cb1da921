"""tinylora.lab.plots and tinylora.text.plots: every figure function writes a PNG without a
display, and none of them touches matplotlib's backend (the user's, or a notebook's, choice)."""

import math
import os
import subprocess
import sys
import textwrap
from pathlib import Path

from tinylora.lab import plots


def _png(path):
    return path.exists() and path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_heatmaps_draw_diverged_and_missing_cells(tmp_path):
    """inf (diverged) and nan (not trained) cells are drawn, not crashed on."""
    panel = {"title": "t", "eta_A": [1e-3, 1e-2, 1e-1], "eta_B": [1e-2, 1e-1],
             "loss": [[0.5, 0.1, math.inf], [math.nan, 0.2, math.inf]], "best": (0, 1),
             "near": [(0, 1), (1, 1)]}
    assert _png(plots.heatmaps([panel, panel], tmp_path / "h.png", "title"))


def test_sweep_figures_with_missing_widths(tmp_path):
    """A width without a best ratio (every cell diverged) is skipped in the figures."""
    summary = {"widths": [64, 128, 256], "best_ratio": [2.0, None, 9.0],
               "ratio_interval": [[1.0, 3.0], None, [5.0, 12.0]],
               "seed_best_ratios": [[2.0], [], [9.0, 7.0]], "exponent": 1.1,
               "exponent_interval": [0.5, 1.7], "fit_widths": [64, 256],
               "loss_lora": [0.1, math.inf, 0.2], "loss_loraplus": [0.05, math.inf, 0.1]}
    assert _png(plots.ratio_vs_width(summary, tmp_path / "r.png"))
    assert _png(plots.lora_vs_loraplus(summary, tmp_path / "l.png"))


def test_coordcheck_and_toy_figures(tmp_path):
    """The coordinate-check and analytic-toy figures are written as PNG files without a display."""
    rows = [{"schedule": "theory", "layer": "fc2", "step": t, "quantity": q, "width": w,
             "seed": s, "value": (w / 64) ** 0.1 * (1 + s) if q != "delta1" or t > 1 else 0.0}
            for t in (1, 2) for q in ("delta1", "delta2") for w in (64, 128) for s in (0, 1)]
    assert _png(plots.coordcheck(rows, tmp_path / "c.png", "theory"))
    toy_rows = [{"optimizer": "gd", "schedule": "shared", "step": 2, "quantity": q, "width": w,
                 "value": float(w)} for q in ("delta1", "delta2", "delta3") for w in (16, 32)]
    assert _png(plots.toy_deltas(toy_rows, tmp_path / "t.png", "gd", 2, 1,
                                 {"shared/delta1": 1.0}))


def test_plots_leave_the_users_backend_and_pyplot_alone(tmp_path):
    """Importing and drawing every kind of figure leaves `matplotlib.get_backend()` as the user set
    it and never imports pyplot (a fresh interpreter, `MPLBACKEND` unset, backend set to svg)."""
    code = textwrap.dedent(f"""
        import sys
        import matplotlib
        matplotlib.use("svg")
        from tinylora.lab import plots
        from tinylora.text import plots as text_plots
        out = {str(tmp_path)!r}
        plots.toy_deltas([{{"optimizer": "gd", "schedule": "shared", "step": 2, "quantity": q,
                            "width": w, "value": float(w)}} for q in ("delta1", "delta2", "delta3")
                           for w in (16, 32)], out + "/a.png", "gd", 2, 1, {{}})
        plots.heatmaps([{{"title": "t", "eta_A": [0.1, 1.0], "eta_B": [0.1, 1.0],
                          "loss": [[1.0, 2.0], [3.0, float("inf")]], "best": (0, 0)}}],
                       out + "/h.png", "t")
        text_plots.pretrain_curves([{{"curve": {{"step": [0, 1], "val_loss": [2.0, 1.0]}},
                                     "config": {{"d_model": 8}}}}], out + "/p.png")
        print(matplotlib.get_backend(), "matplotlib.pyplot" in sys.modules)
    """)
    env = {k: v for k, v in os.environ.items() if k != "MPLBACKEND"}
    root = str(Path(__file__).resolve().parents[1])
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [root, env.get("PYTHONPATH")]))
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                          check=True, timeout=120)
    assert done.stdout.split() == ["svg", "False"]
    assert all(_png(tmp_path / f) for f in ("a.png", "h.png", "p.png"))

"""Figures of the width law: rates against the width with the predicted slopes drawn, exponents
against the step and the size, the loss landscape's valley. Drawn like `tinylora.lab.plots`:
a `matplotlib.figure.Figure` without pyplot, saved to a file (the user's backend is never
touched); each function returns the path and its title says what it shows."""

from __future__ import annotations

import math

from tinylora.lab.plots import finish_log_axes, log2_width_axis, new_figure, save_figure

RATE_LABELS = {"eta_A": "eta_A*", "eta_B": "eta_B*", "ratio": "ratio eta_B*/eta_A*",
               "product": "product eta_A* eta_B*"}


def _line_with_slope(ax, widths, values, slope, color, label, predicted=None,
                     labels=(None, None)):
    """Points and the fitted power law (solid); the predicted slope dashed through the same
    geometric mean, so a gap between the two lines is the gap between exponents.
    -> whether anything was drawn (nothing to draw: no positive finite value)."""
    pts = [(w, v) for w, v in zip(widths, values) if v is not None and 0 < v < math.inf]
    if not pts:
        return False
    w, v = zip(*pts)
    if label is not False:
        ax.plot(w, v, "o", ms=3.5, color=color, label=label)
    mw = math.exp(sum(map(math.log, w)) / len(w))
    mv = math.exp(sum(map(math.log, v)) / len(v))
    for s, style, text in ((slope, "-", labels[0]), (predicted, "--", labels[1])):
        if s is not None and len(w) > 1:
            ax.plot(w, [mv * (x / mw) ** s for x in w], style, color=color, lw=1, alpha=0.8,
                    label=text)
    return True


def _finish_or_empty(ax, drawn: bool, ylabel: str, title: str) -> None:
    """`plots.finish_log_axes` (log y axis, labels, legend) when the panel has data, else a note."""
    if drawn:
        finish_log_axes(ax, ylabel, title)
    else:
        ax.set_title(title, fontsize=10)
        ax.text(0.5, 0.5, "nothing located", ha="center", va="center", transform=ax.transAxes)


def balance_rates(setting: dict, layer: str, path, title: str):
    """eta_A*, eta_B* and the ratio against the width: one row of panels per step t, one colour
    per size c; solid: the fit, dashed: the predicted slope. -> the path."""
    rows = [r for r in setting["rows"] if r["layer"] == layer]
    steps = sorted({r["t"] for r in rows})
    sizes = sorted({r["c"] for r in rows})
    fig, axes = new_figure(len(steps), 3, figsize=(12, 3.2 * len(steps)), squeeze=False)
    for ax_row, t in zip(axes, steps):
        for ax, rate in zip(ax_row, ("eta_A", "eta_B", "ratio")):
            drawn = False
            for r in (r for r in rows if r["t"] == t):
                ex = r["exponents"][rate]
                drawn |= _line_with_slope(ax, setting["widths"], r[rate], ex and ex["slope"],
                                          f"C{sizes.index(r['c'])}", f"c = {r['c']:g}",
                                          setting["predicted"][rate])
            log2_width_axis(ax, setting["widths"])
            _finish_or_empty(ax, drawn, RATE_LABELS[rate], f"{RATE_LABELS[rate]}, step t = {t}")
            legend = ax.get_legend()
            if legend is not None and rate != "eta_A":
                legend.remove()
    fig.suptitle(title + "\n(points: roots; solid: fitted power law; dashed: predicted slope)",
                 fontsize=9)
    return save_figure(fig, path)


def balance_exponents(setting: dict, layer: str, path, title: str):
    """The fitted exponents of eta_A*, eta_B* and the ratio against the step t, one line per
    size c, with their 95 % intervals; dashed: the prediction. -> the path."""
    rows = [r for r in setting["rows"] if r["layer"] == layer]
    sizes = sorted({r["c"] for r in rows})
    fig, axes = new_figure(1, 3, figsize=(12, 3.5))
    for ax, rate in zip(axes, ("eta_A", "eta_B", "ratio")):
        for i, c in enumerate(sizes):
            pts = [(r["t"] * (1 + 0.03 * (i - 1)), r["exponents"][rate]) for r in rows
                   if r["c"] == c and r["exponents"][rate] is not None]
            if not pts:
                continue
            t, ex = zip(*pts)
            mid = [e["slope"] for e in ex]
            lo = [m - (e["interval"] or [m, m])[0] for m, e in zip(mid, ex)]
            hi = [(e["interval"] or [m, m])[1] - m for m, e in zip(mid, ex)]
            ax.errorbar(t, mid, yerr=[lo, hi], fmt="o-", ms=3.5, capsize=3, color=f"C{i}",
                        label=f"c = {c:g}")
        ax.axhline(setting["predicted"][rate], ls="--", color="gray", lw=1, label="predicted")
        ax.set_xscale("log")
        ax.minorticks_off()
        ts = sorted({r["t"] for r in rows})
        ax.set_xticks(ts)
        ax.set_xticklabels([str(t) for t in ts])
        ax.set_xlabel("step t")
        ax.set_ylabel(f"exponent of {RATE_LABELS[rate]}")
        ax.grid(alpha=0.3)
        ax.set_ylim(setting["predicted"][rate] - 1.5, setting["predicted"][rate] + 1.5)
    axes[0].legend(fontsize=7)
    fig.suptitle(title, fontsize=9)
    return save_figure(fig, path)


def balance_figures(summary: dict, out) -> list:
    """Both figures for every setting and LoRA layer of a `tinylora balance` summary."""
    paths = []
    for name, s in summary["settings"].items():
        for layer in dict.fromkeys(r["layer"] for r in s["rows"]):
            tag = name if len({r["layer"] for r in s["rows"]}) == 1 else f"{name}_{layer}"
            what = f"{name}, layer {layer}: balanced rates (RMS delta1 = RMS delta2 = c at step t)"
            paths.append(balance_rates(s, layer, out / f"balance_{tag}_rates.png", what))
            paths.append(balance_exponents(s, layer, out / f"balance_{tag}_exponents.png",
                                           f"{name}, layer {layer}: fitted exponents against t "
                                           f"and c (bars: 95 % intervals)"))
    return paths


def sweep_rates(summary: dict, path):
    """The located eta_A*, eta_B*, ratio and product against the width (log-log), with their
    bootstrap intervals; solid: the fitted exponent, dashed: this setting's prediction; hollow
    markers: widths where the optimum is not located (a flat valley). -> the path."""
    keys = {"eta_A": "exponent_eta_A", "eta_B": "exponent_eta_B", "ratio": "exponent",
            "product": "exponent_product"}
    fig, axes = new_figure(1, 4, figsize=(15, 3.8))
    widths = summary["widths"]
    for ax, rate in zip(axes, ("eta_A", "eta_B", "ratio", "product")):
        values, ivs = summary[f"best_{rate}"], summary[f"{rate}_interval"]
        fit = [(w, v) for w, v, e in zip(widths, values, summary["edge"]) if v and not e]
        x, iv = summary[keys[rate]], summary[f"{keys[rate]}_interval"]
        ci = "" if iv is None else f" [{iv[0]:+.2f}, {iv[1]:+.2f}]"
        drawn = _line_with_slope(
            ax, [w for w, _ in fit], [v for _, v in fit], x, "C0", False,
            summary["predicted"][rate],
            (None if x is None else f"fit n^{x:+.2f}{ci}",
             f"predicted n^{summary['predicted'][rate]:+g}"))
        for w, v, iv, ok in zip(widths, values, ivs, summary["identifiable"]):
            if v is None or iv is None:
                continue
            ax.errorbar([w], [v], yerr=[[v - iv[0]], [iv[1] - v]], fmt="o", capsize=3,
                        color="C0", mfc="C0" if ok else "white")
        log2_width_axis(ax, widths)
        _finish_or_empty(ax, drawn, RATE_LABELS[rate], RATE_LABELS[rate])
    cfg = summary["config"]
    fig.suptitle(f"Loss-optimal rates, readout {cfg['readout']}, init {cfg['init']}, loss at step "
                 f"{cfg['steps']} (bars: 95 % bootstrap intervals over {cfg['seeds']} seeds; "
                 f"hollow: not located, a flat valley)", fontsize=9)
    return save_figure(fig, path)


def width_law(curves: list, path, title: str):
    """The ratio eta_B*/eta_A* against the width for several measurements, each with its 95 %
    intervals (where it has them), its fitted exponent (solid) and its own prediction (dashed).

    curves: [{"label", "widths", "ratio", "intervals" (list of [lo, hi] or None), "slope",
    "interval" (of the slope), "predicted"}]. -> the path."""
    fig, ax = new_figure(figsize=(6.2, 4.4))
    every = sorted({w for c in curves for w in c["widths"]})
    for i, c in enumerate(curves):
        color = f"C{i}"
        pts = [(w, v, iv) for w, v, iv in zip(c["widths"], c["ratio"], c["intervals"])
               if v is not None]
        if not pts:
            continue
        for w, v, iv in pts:
            if iv is not None:
                ax.errorbar([w], [v], yerr=[[v - iv[0]], [iv[1] - v]], fmt="none", capsize=2,
                            color=color, alpha=0.6)
        ci = "" if c["interval"] is None else f" [{c['interval'][0]:+.2f}, {c['interval'][1]:+.2f}]"
        label = f"{c['label']}: n^{c['slope']:+.2f}{ci} (predicted n^{c['predicted']:+g})"
        ws, vs = [w for w, _, _ in pts], [v for _, v, _ in pts]
        ax.plot(ws, vs, "o", ms=4, color=color, label=label)
        _line_with_slope(ax, ws, vs, c["slope"], color, False,
                         c["predicted"])
    log2_width_axis(ax, every)
    finish_log_axes(ax, "ratio eta_B* / eta_A*", title)
    ax.legend(fontsize=7, loc="upper left")
    ax.text(0.99, 0.01, "solid: fit; dashed: each setting's own prediction", fontsize=7,
            ha="right", va="bottom", transform=ax.transAxes)
    return save_figure(fig, path)


def width_law_curves(balance: dict, sweeps: list) -> list:
    """`width_law`'s curves from a `tinylora balance` summary (its toy setting with readout sp,
    Init[1], at the smallest c and earliest t) and `tinylora width-sweep` summaries."""
    curves = []
    setting = balance["settings"].get("toy-sp-init1")
    if setting:
        r = setting["rows"][0]
        e = r["exponents"]["ratio"]
        curves.append({"label": f"balanced, sp, Init[1] (t = {r['t']}, c = {r['c']:g})",
                       "widths": setting["widths"], "ratio": r["ratio"],
                       "intervals": [None] * len(r["ratio"]), "slope": e and e["slope"],
                       "interval": e and e["interval"],
                       "predicted": setting["predicted"]["ratio"]})
    for s in sweeps:
        init = {"zero_B": "Init[1]", "zero_A": "Init[2]"}[s["config"]["init"]]
        curves.append({"label": f"loss-optimal, {s['config']['readout']}, {init}",
                       "widths": s["widths"], "ratio": s["best_ratio"],
                       "intervals": s["ratio_interval"], "slope": s["exponent"],
                       "interval": s["exponent_interval"], "predicted": s["predicted"]["ratio"]})
    return [c for c in curves if c["slope"] is not None]

"""`tinylora pretrain`: train the base models that `tinylora finetune` adapts, and cache them
(`tinylora.text.pretrain`), saying first how long it will take here (`tinylora.text.estimate`).

Outputs in ``--out``: records.json (one base record per width, with ``reused`` and ``path``),
summary.json (widths, val_loss: the validation loss in nats per character, reused: whether the
cached base was reused), summary.md (the table) and the validation curves' figure.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from tinylora.run.options import (
    ListOf,
    options_from_args,
    out_folder,
    parse_list,
    positive_float,
    positive_int,
)
from tinylora.run.records import markdown_table, write_json, write_text
from tinylora.text import estimate, plots
from tinylora.text.pretrain import (
    CACHE_ENV,
    DEFAULT_WIDTHS,
    FAST_WIDTHS,
    ensure_base,
    pretrain_config,
)


@dataclass(frozen=True)
class PretrainOptions:
    """The options of `tinylora pretrain` (`add_arguments` is the CLI's definition)."""

    widths: tuple | None = None  # d_model values; None: DEFAULT_WIDTHS (fast: FAST_WIDTHS)
    steps: int | None = None  # AdamW steps per width; None: PretrainConfig.steps
    lr: float | None = None  # peak learning rate; None: PretrainConfig.lr
    cache: str | None = None  # folder of saved bases; None: `default_cache()`
    out: str = "pretrain-out"  # folder for records, summary, figure
    fast: bool = False  # tiny models and few steps (seconds)
    force: bool = False  # retrain a cached base whose configuration differs, overwriting it
    backend: str | None = None  # "numpy" or "cupy"; None: the default backend
    no_progress: bool = False  # no progress bars


def add_arguments(parser) -> None:
    parser.add_argument("--widths", action=ListOf, kind=positive_int, default=None,
                        help=f"d_model values (default {','.join(map(str, DEFAULT_WIDTHS))}; "
                             f"--fast: {','.join(map(str, FAST_WIDTHS))})")
    parser.add_argument("--steps", type=positive_int, default=None,
                        help="AdamW steps per width (default 600)")
    parser.add_argument("--lr", type=positive_float, default=None,
                        help="peak learning rate (default 3e-3)")
    parser.add_argument("--cache", default=None, help=f"folder of saved bases (default "
                        f"${CACHE_ENV} or ~/.cache/tinylora/bases)")
    parser.add_argument("--out", type=out_folder, default="pretrain-out",
                        help="folder for records, summary, figure")
    parser.add_argument("--fast", action="store_true", help="tiny models and few steps (seconds)")
    parser.add_argument("--force", action="store_true", help="retrain a cached base whose "
                        "configuration differs, overwriting it")
    parser.add_argument("--backend", choices=["numpy", "cupy"], default=None)
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")


def main(args) -> int:
    result = execute(options_from_args(PretrainOptions, args))
    for d, r in zip(result["widths"], result["records"]):
        print(f"d_model={d:4d}  val loss {r['val_loss']:.4f}  "
              f"({'reused' if r['reused'] else 'trained'}: {r['path']})")
    out = result["out"]
    print(f"wrote {out / 'records.json'}, {out / 'summary.json'}, {out / 'summary.md'}, "
          f"{result['figure']}")
    return 0


def execute(options: PretrainOptions) -> dict:
    """Ensure a base per width (`ensure_base`), write records, summary and the figure.
    -> {"widths", "records", "figure", "out"}."""
    widths = (FAST_WIDTHS if options.fast else DEFAULT_WIDTHS) if options.widths is None \
        else parse_list(options.widths)
    configs = [pretrain_config(d, options.fast, steps=options.steps, lr=options.lr)
               for d in widths]
    plan = estimate.pretrain_plan(configs, options.cache, options.backend, options.force)
    plan.announce()
    records = []
    with plan.bar(show=not options.no_progress) as progress:
        for c in configs:
            records.append(ensure_base(c, options.cache, options.force, options.backend, False,
                                       progress.part(c.stem, c.steps)))
            progress.done(c.stem)
    out = Path(options.out)
    write_json(out / "records.json", records)
    write_json(out / "summary.json", {"widths": list(widths),
                                      "val_loss": [r["val_loss"] for r in records],
                                      "reused": [r["reused"] for r in records]})
    lines = ["# Pretrained bases (TinyLM, all arrays trained, AdamW)", "",
             f"Text: {records[0]['config']['text']}; validation = the last 10 % of it.", "",
             markdown_table(["d_model", "parameters", "steps", "val loss (nats/char)", "seconds",
                             "cached at"],
                            [[d, r.get("n_params", ""), r["config"]["steps"],
                              f"{r['val_loss']:.4f}",
                              "reused" if r["reused"] else f"{r['seconds']:.0f}", f"`{r['path']}`"]
                             for d, r in zip(widths, records)])]
    write_text(out / "summary.md", "\n".join(lines) + "\n")
    figure = plots.pretrain_curves(records, out / "pretrain_val_loss_by_width.png")
    return {"widths": widths, "records": records, "figure": figure, "out": out}

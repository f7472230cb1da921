"""Rebuild a fine-tuning study's summary.json, summary.md and figures from its records.json alone.

`tinylora.text.report.summarize` recomputes everything from the run records, so a change of the
report (an estimator, an interval) is applied to a recorded study without running anything:

    MPLBACKEND=Agg python scripts/finetune_report.py docs/results/finetune

It prints the study's table, as `tinylora finetune` does.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from tinylora.run.records import read_json, write_json
from tinylora.text import plots
from tinylora.text.report import summarize
from tinylora.text.tables import markdown, print_table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path, help="a study's folder (with records.json)")
    folder = parser.parse_args().folder
    records = read_json(folder / "records.json")
    summary, details = summarize(records)
    write_json(folder / "summary.json", summary)
    (folder / "summary.md").write_text(markdown(records, summary, details))
    plots.finetune_figures(records, summary, details, folder)
    print_table(records, summary, details)


if __name__ == "__main__":
    main()

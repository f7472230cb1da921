"""What a command prints, within 100 columns.

The commands build their tables as Markdown (the same text goes into summary.md, where a wide
table is fine); on a terminal a Markdown table is read best as aligned columns, and one wider
than a terminal wraps into noise. `fit` turns a command's text into what it prints:

    | width | eta_A* | ... |          width  eta_A*   eta_B*   ratio ...
    |---|---|...|             ->        64  0.0151   0.0393    2.61 ...
    | 64 | 0.0151 | ... |

a Markdown table becomes aligned columns, split into blocks of columns (the first column
repeated in each) when it is wider than 100; any other line longer than 100 is wrapped, its
continuation indented.
"""

from __future__ import annotations

import textwrap

WIDTH = 100


def _cells(line: str) -> list[str]:
    return [c.strip() for c in line.strip().strip("|").split("|")]


def _is_rule(line: str) -> bool:
    return set(line.replace("|", "").strip()) <= set("-: ")


def columns(rows: list[list[str]], width: int = WIDTH) -> list[str]:
    """Rows of cells (the first the header) as aligned columns, numbers to the right, in blocks
    of columns no wider than `width`, the first column repeated in each block."""
    sizes = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    numeric = [all(_number(r[i]) for r in rows[1:]) for i in range(len(sizes))]

    def cell(text, i):
        return text.rjust(sizes[i]) if numeric[i] else text.ljust(sizes[i])

    blocks, block = [], []
    for i in range(1, len(sizes)):
        if block and sizes[0] + sum(sizes[j] + 2 for j in [*block, i]) > width:
            blocks.append(block)
            block = []
        block.append(i)
    blocks.append(block)
    out = []
    for n, block in enumerate(blocks):
        if n:
            out.append("")
        out += ["  ".join(cell(r[i], i) for i in [0, *block]).rstrip() for r in rows]
    return out


def _number(text: str) -> bool:
    """A cell that reads as a number ('2.06 [2.05, 2.07]', '1e+04'), or '-' (none)."""
    try:
        float(text.split()[0]) if text != "-" else None
    except (ValueError, IndexError):
        return False
    return True


def fit(text: str, width: int = WIDTH) -> str:
    """`text` as printed: Markdown tables as aligned columns, long lines wrapped (see above)."""
    out, table = [], []
    for line in text.splitlines():
        if line.lstrip().startswith("|"):
            if not _is_rule(line):
                table.append(_cells(line))
            continue
        out += columns(table, width) if table else []
        table = []
        indent = " " * (len(line) - len(line.lstrip()))
        out += [line] if len(line) <= width else textwrap.wrap(
            line, width, subsequent_indent=indent + "  ", break_on_hyphens=False)
    return "\n".join(out + (columns(table, width) if table else []))


class Fitted:
    """A text stream that passes what a command prints through `fit`, line by line (a Markdown
    table is held until its last row): ``tinylora <command>`` prints through one, so that no
    command's output is wider than 100 columns."""

    def __init__(self, stream, width: int = WIDTH):
        self.stream, self.width, self.partial, self.table = stream, width, "", []

    def write(self, text: str) -> int:
        lines = (self.partial + text).split("\n")
        self.partial = lines.pop()
        for line in lines:
            if line.lstrip().startswith("|"):
                self.table.append(line)
                continue
            self._flush_table()
            self.stream.write(fit(line, self.width) + "\n")
        return len(text)

    def _flush_table(self) -> None:
        if self.table:
            self.stream.write(fit("\n".join(self.table), self.width) + "\n")
            self.table = []

    def flush(self) -> None:
        self.stream.flush()

    def finish(self) -> None:
        """Print what is held (a table at the very end, a line without its newline)."""
        self._flush_table()
        if self.partial:
            self.stream.write(fit(self.partial, self.width))
            self.partial = ""
        self.stream.flush()

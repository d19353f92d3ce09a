"""Text artifacts as Markdown tables (`ctx.write_text(name, markdown_table(...))`), readable as plain text and
rendered by any Markdown viewer; never a Python repr.

    markdown_table(["1-S", "features"], [[1.0, 2], [0.05, 5]])
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def _cell(x: Any, digits: int) -> str:
    if isinstance(x, float):
        return f"{x:.{digits}g}"
    return str(x).replace("|", "\\|")


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[Any]], digits: int = 4) -> str:
    """A GitHub-flavoured Markdown table; floats with `digits` significant digits, columns padded to align."""
    cells = [[_cell(h, digits) for h in headers]] + [[_cell(x, digits) for x in row] for row in rows]
    if any(len(r) != len(headers) for r in cells):
        raise ValueError("every row needs one cell per header")
    widths = [max(len(r[j]) for r in cells) for j in range(len(headers))]

    def line(row: list[str]) -> str:
        return "| " + " | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) + " |"

    rule = "| " + " | ".join("-" * w for w in widths) + " |"
    return "\n".join([line(cells[0]), rule, *map(line, cells[1:])]) + "\n"

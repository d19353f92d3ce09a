"""The walkthroughs' build: each `notebooks/<paper>.py` (percent format, the source you edit and review) becomes
`notebooks/<paper>.ipynb` (what Jupyter opens), without outputs, so both diff cleanly.

    python notebooks/build.py [NAME ...]  write every (or each named) .ipynb from its .py
    python notebooks/build.py --check     exit 1 naming each .ipynb that is missing or differs from its .py
    python notebooks/build.py --execute [NAME ...] [--save DIR]
                                          run the notebooks top to bottom (nbclient, one thread, a time limit per
                                          notebook) and print each one's time; exit 1 on the first that fails;
                                          --save writes each executed notebook, outputs and figures included, to DIR

The percent format is jupytext's: a line `# %%` starts a code cell, `# %% [markdown]` a markdown cell whose lines
each start with `# ` (or are a bare `#`). The text before the first marker is the file's docstring-free header and is
dropped.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
LIMIT_S = 300  # per notebook; each is meant to run in about two minutes or less on one CPU thread


def cells_of(text: str) -> list[tuple[str, str]]:
    """[(kind, source)] of a percent-format script, kind 'code' or 'markdown'."""
    cells: list[tuple[str, list[str]]] = []
    for line in text.splitlines():
        if line.startswith("# %%"):
            kind = "markdown" if "[markdown]" in line else "code"
            cells.append((kind, []))
        elif cells:
            kind, body = cells[-1]
            if kind == "markdown":
                if line.strip() and not line.startswith("#"):
                    raise ValueError(f"a markdown cell's line must start with '# ': {line!r}")
                line = line[2:] if line.startswith("# ") else line[1:]
            body.append(line)
    out = []
    for kind, body in cells:
        while body and not body[-1].strip():
            body.pop()
        while body and not body[0].strip():
            body.pop(0)
        if body:
            out.append((kind, "\n".join(body)))
    return out


def notebook_json(text: str) -> str:
    """The .ipynb (nbformat 4, no outputs) of a percent-format script, as the text written to disk."""
    cells = []
    for i, (kind, source) in enumerate(cells_of(text)):
        lines = source.splitlines(keepends=True)
        cell = {"cell_type": kind, "id": f"cell-{i}", "metadata": {}, "source": lines}
        if kind == "code":
            cell |= {"execution_count": None, "outputs": []}
        cells.append(cell)
    nb = {"cells": cells, "metadata": {"kernelspec": {"display_name": "Python 3", "language": "python",
                                                      "name": "python3"},
                                       "language_info": {"name": "python"},
                                       "jupytext": {"formats": "ipynb,py:percent"}},
          "nbformat": 4, "nbformat_minor": 5}  # fmt: skip
    return json.dumps(nb, indent=1, ensure_ascii=False) + "\n"


def sources() -> list[Path]:
    return sorted(p for p in HERE.glob("*.py") if p.name != "build.py")


def build(check: bool, names: list[str] | None = None) -> int:
    stale = []
    chosen = [HERE / f"{n.removesuffix('.ipynb').removesuffix('.py')}.py" for n in names or []] or sources()
    for src in chosen:
        want = notebook_json(src.read_text())
        target = src.with_suffix(".ipynb")
        if target.is_file() and target.read_text() == want:
            continue
        if check:
            stale.append(target.name)
        else:
            target.write_text(want)
            print(f"wrote {target.relative_to(HERE.parent)}")
    orphans = [p.name for p in HERE.glob("*.ipynb") if not p.with_suffix(".py").is_file()]
    if stale or orphans:
        print(f"out of date (run `python notebooks/build.py`): {', '.join(stale)}" if stale else "", file=sys.stderr)
        if orphans:
            print(f"notebooks without a .py source: {', '.join(orphans)}", file=sys.stderr)
        return 1
    return 0


def execute(names: list[str], save: Path | None = None) -> int:
    """Run each named walkthrough (default all) in a fresh kernel, from notebooks/ as Jupyter would."""
    import nbformat
    from nbclient import NotebookClient

    os.environ.setdefault("OMP_NUM_THREADS", "1")
    chosen = [HERE / f"{n.removesuffix('.ipynb')}.ipynb" for n in names] or [s.with_suffix(".ipynb") for s in sources()]
    for path in chosen:
        nb = nbformat.reads(notebook_json(path.with_suffix(".py").read_text()), as_version=4)
        t0 = time.perf_counter()
        client = NotebookClient(nb, timeout=LIMIT_S, kernel_name="python3", resources={"metadata": {"path": str(HERE)}})
        try:
            client.execute()
        except Exception as e:  # noqa: BLE001  (CellExecutionError, CellTimeoutError, DeadKernelError: all fatal here)
            print(f"FAILED {path.name} after {time.perf_counter() - t0:.0f} s: {str(e)[-2000:]}", file=sys.stderr)
            return 1
        print(f"ok {path.name} {time.perf_counter() - t0:.0f} s")
        if save is not None:
            save.mkdir(parents=True, exist_ok=True)
            nbformat.write(nb, save / path.name)
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("names", nargs="*", metavar="NAME", help="build only these walkthroughs (default: all)")
    p.add_argument("--check", action="store_true", help="only check that every .ipynb matches its .py")
    p.add_argument("--execute", nargs="*", metavar="NAME", help="run these notebooks (default: all)")
    p.add_argument("--save", type=Path, metavar="DIR", help="with --execute: write the executed notebooks here")
    args = p.parse_args(argv)
    if args.execute is not None:
        return execute(args.execute, args.save)
    return build(args.check, args.names)


if __name__ == "__main__":
    raise SystemExit(main())

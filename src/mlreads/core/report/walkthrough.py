"""What the walkthroughs (`notebooks/<paper>.ipynb`) share: run a claim's experiment at a small budget, show a
function of the package beside the paper's equation, and say what the published quick runs found.

A walkthrough never copies the package's code: it imports it, and `show_source` prints the function as the package
has it. Nothing here hard-codes a result: `published` reads the ledger (`results/`) each time it is called.

    from mlreads.core.report import walkthrough as wt
    result, run_dir = wt.smoke("gpt/char-lm")        # the smoke budget: seconds, a pipeline check, not a verdict
    wt.show_source(GPT.forward)                      # the code, as the package has it
    print(wt.published("gpt/char-lm"))               # the quick verdict over seeds, from the ledger
"""

from __future__ import annotations

import inspect
import tempfile
from pathlib import Path

from mlreads.core.report.claim import claim_folder, repository
from mlreads.core.report.ledger import load_ledger, seed_rules, verdicts


def root() -> Path:
    """The checkout's root (the folder holding `results/` and `src/`): the repository of the installed package, else
    the first folder up from the working directory that holds a `results/` ledger."""
    found = repository()
    if found is not None:
        return found
    for d in (Path.cwd(), *Path.cwd().parents):
        if (d / "results").is_dir() and (d / "pyproject.toml").is_file():
            return d
    raise FileNotFoundError("no mlreads checkout found (a folder with results/ and pyproject.toml): run the "
                            "walkthrough from inside the repository")  # fmt: skip


def smoke(exp_id: str, budget: str = "smoke", overrides: dict[str, str] | None = None,
          out: str | Path | None = None) -> tuple[dict, Path]:  # fmt: skip
    """Run one experiment at `budget` (default smoke) on one thread, into `out` (default a fresh temporary folder);
    return (its result dict, its run folder). A smoke run checks the pipeline; it decides nothing about the paper."""
    from mlreads.core.run.registry import load_all
    from mlreads.core.run.results import run_dir_name
    from mlreads.core.run.runner import run_experiment

    experiments = load_all()
    if exp_id not in experiments:
        raise KeyError(f"{exp_id!r} is not a registered experiment (`mlreads list` lists them)")
    import matplotlib

    out = Path(out) if out is not None else Path(tempfile.mkdtemp(prefix="mlreads-walkthrough-"))
    backend = matplotlib.get_backend()  # the runner draws off-screen (Agg); the notebook's inline plots come back after
    try:
        result = run_experiment(experiments[exp_id], budget, seed=0, out=out, overrides=overrides, threads=1,
                                overwrite=True)  # fmt: skip
    finally:
        _restore_backend(backend)
    return result, out / exp_id / run_dir_name(budget, 0, overrides)


def fits(run_dir: str | Path) -> dict[str, list[dict]]:
    """A run's log (`metrics.jsonl`) grouped by the model each row trains (fit's `fit` label, e.g. "relu", "tanh"),
    in the order the run trained them. Rows without a label (logs written before labels) go under ""."""
    import json

    out: dict[str, list[dict]] = {}
    for line in (Path(run_dir) / "metrics.jsonl").read_text().splitlines():
        row = json.loads(line)
        out.setdefault(row.pop("fit", ""), []).append(row)
    return out


def _restore_backend(backend: str) -> None:
    """Switch matplotlib back to `backend`; in a notebook, re-enable inline figures (IPython's `%matplotlib inline`,
    which also restores the PNG display that a plain switch of backend leaves off)."""
    import matplotlib

    try:
        from IPython import get_ipython

        shell = get_ipython()
    except ImportError:
        shell = None
    if shell is not None and "inline" in backend:
        shell.run_line_magic("matplotlib", "inline")
    else:
        matplotlib.use(backend)


def show_source(obj) -> str:
    """The source of a package function or class, with the file and line it starts at, printed and returned."""
    obj = inspect.unwrap(obj)  # a decorated function (torch.no_grad) shows its own body
    lines, start = inspect.getsourcelines(obj)
    where = Path(inspect.getsourcefile(obj)).as_posix()
    where = where[where.index("mlreads/"):] if "mlreads/" in where else where
    text = f"# {where}, line {start}\n" + "".join(lines)
    print(text)
    return text


def published(exp_id: str, budget: str = "quick") -> str:
    """One paragraph on what the published `budget` runs of `exp_id` found: the verdict over seeds, its headline
    number and, unless reproduced, why; and where the claim's page is. Read from the ledger at each call."""
    from mlreads.core.run.registry import load_all

    here = root()
    experiments = load_all()
    entries = [e for e in load_ledger(here / "results") if e["id"] == exp_id]
    page = "reports/" + "/".join(claim_folder(exp_id)) + "/index.html"
    v = verdicts(entries, seed_rules(experiments)).get((exp_id, budget))
    if v is None:
        return (f"{exp_id}: no {budget} run is published yet (the claim's page, once `mlreads report` has written it: "
                f"{page}).")  # fmt: skip
    parts = [f"{exp_id} at {budget}: {v.word}", v.headline, v.seeds_text]
    text = "; ".join(p for p in parts if p) + "."
    if v.why:
        text += f" Why: {v.why}."
    return text + f" The claim's page (after `mlreads report`): {page}; `mlreads show {exp_id}` prints the same."

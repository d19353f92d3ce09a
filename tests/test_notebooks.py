"""The walkthroughs (`notebooks/<paper>.py`, built into `<paper>.ipynb`): one per paper of the reading list, each in
sync with its source, each importing the package's code rather than copying it, drawing a figure and reading the
published verdict from the ledger. Executing them takes minutes, so it is its own target: `make notebooks` (CI runs
it after `make test`) sets MLREADS_NOTEBOOKS=1, and without it the execution tests skip."""

from __future__ import annotations

import ast
import json
import importlib.util
import os
import re
from pathlib import Path

import pytest

from mlreads.core.papers import READING_LIST, paper_of
from mlreads.core.run.registry import load_all

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
PREFIXES = [p.prefix for p in READING_LIST]
EXECUTE = os.environ.get("MLREADS_NOTEBOOKS") == "1"


def _build():
    spec = importlib.util.spec_from_file_location("notebooks_build", NOTEBOOKS / "build.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_paper_has_a_walkthrough_source_and_notebook():
    missing = [p for p in PREFIXES if not (NOTEBOOKS / f"{p}.py").is_file() or not (NOTEBOOKS / f"{p}.ipynb").is_file()]
    assert not missing, f"walkthroughs missing: {missing}"


def test_every_notebook_is_built_from_its_source():
    assert _build().build(check=True) == 0, "run `python notebooks/build.py`"


def test_the_percent_format_round_trips():
    build = _build()
    text = "# header\n# %% [markdown]\n# # Title\n#\n# text\n\n# %%\nx = 1\n\n\n# %%\nprint(x)\n"
    assert build.cells_of(text) == [("markdown", "# Title\n\ntext"), ("code", "x = 1"), ("code", "print(x)")]
    with pytest.raises(ValueError, match="must start with"):
        build.cells_of("# %% [markdown]\nnot a comment\n")


@pytest.mark.parametrize("prefix", PREFIXES)
def test_a_walkthrough_imports_draws_and_reads_the_ledger(prefix):
    path = NOTEBOOKS / f"{prefix}.py"
    if not path.is_file():
        pytest.skip(f"{path.name} is missing (the test above fails for it)")
    build = _build()
    cells = build.cells_of(path.read_text())
    code = "\n".join(src for kind, src in cells if kind == "code")
    text = "\n".join(src for kind, src in cells if kind == "markdown")
    tree = ast.parse(code)  # the code cells are plain Python (no magics)
    imports = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    assert any(m and m.startswith("mlreads") for m in imports), "a walkthrough imports the package's code"
    # never a copy: no class of its own, and no long function (a helper for a plot is fine)
    assert not [n.name for n in ast.walk(tree) if isinstance(n, ast.ClassDef)], "a walkthrough defines no classes"
    long = [n.name for n in ast.walk(tree) if isinstance(n, ast.FunctionDef) and n.end_lineno - n.lineno > 15]
    assert not long, f"functions longer than 15 lines belong in the package: {long}"
    assert "show_source(" in code, "a walkthrough shows the code that implements the paper's equation"
    assert "$$" in text or "$" in text, "a walkthrough states the paper's equation"
    assert "plt.show()" in code or "display(" in code, "a walkthrough draws a figure"
    ids = set(re.findall(r'published\("([^"]+)"', code))
    assert ids, "a walkthrough says what the quick runs found (wt.published)"
    experiments = load_all()
    for exp_id in ids:
        assert exp_id in experiments and paper_of(exp_id).prefix == prefix, exp_id
    assert text.lstrip().startswith("# "), "a walkthrough opens with its title"


@pytest.mark.skipif(not EXECUTE, reason="executing the walkthroughs is `make notebooks` (MLREADS_NOTEBOOKS=1)")
@pytest.mark.parametrize("prefix", PREFIXES)
def test_the_walkthrough_runs_top_to_bottom(prefix, tmp_path):
    assert _build().execute([prefix], save=tmp_path) == 0
    assert (tmp_path / f"{prefix}.ipynb").is_file()


def test_fits_groups_a_log_by_the_model_each_row_trains(tmp_path):
    from mlreads.core.report import walkthrough as wt

    rows = [{"step": 1, "loss": 2.0, "fit": "relu"}, {"step": 2, "loss": 1.0, "fit": "relu"},
            {"step": 1, "loss": 3.0, "fit": "tanh"}, {"step": 1, "loss": 9.0}]  # fmt: skip
    (tmp_path / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    got = wt.fits(tmp_path)
    assert list(got) == ["relu", "tanh", ""]
    assert [r["loss"] for r in got["relu"]] == [2.0, 1.0] and "fit" not in got["tanh"][0]

"""README.md tells the truth: its results table is the ledger's, its commands run as written, its Python snippets run,
it references only files in the repository, and docs/claims.md is the registry's.

- The results table lives between `<!-- results:start -->` and `<!-- results:end -->`; `mlreads readme-table` prints
  it from the ledger (`results/`).
- ```python blocks run in a subprocess (a fresh interpreter, 1 thread, a short timeout). A block that needs a trained
  model or minutes is marked by a `<!-- no-test -->` line right above its fence.
- `mlreads ...` lines of ```bash blocks run in process: `run` lines with `--dry-run` added (ids, overrides and data are
  checked, nothing trains), `report` lines into a temporary folder; `publish` lines need run folders and are skipped.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
FENCE = re.compile(r"(?P<before>[^\n]*)\n```(?P<lang>[a-z]*)\n(?P<body>.*?)\n```", re.S)


def blocks(lang: str) -> list[tuple[int, str, bool]]:
    """(line number, body, skipped) of every fenced block in `lang`."""
    text = README.read_text()
    out = []
    for m in FENCE.finditer(text):
        if m["lang"] == lang:
            line = text[: m.start("body")].count("\n") + 1
            out.append((line, m["body"], m["before"].strip() == "<!-- no-test -->"))
    return out


def test_readme_results_table_matches_the_ledger():
    from mlreads.core.report.ledger import load_ledger, readme_block, readme_section
    from mlreads.core.run.registry import load_all

    section = readme_section(README.read_text())
    if section is None:
        pytest.fail("README.md has no results table between <!-- results:start --> and <!-- results:end -->: run "
                    "`mlreads readme-table` and paste its output (markers included) into README.md")  # fmt: skip
    expected = readme_block(list(load_all().values()), load_ledger(ROOT / "results"))
    assert section == expected, (
        "README.md's results table and the ledger disagree: run `mlreads readme-table` and paste its output "
        "(markers included) over the table in README.md"
    )


def test_docs_claims_is_generated_from_the_registry():
    from mlreads.core.report.docs import claims_markdown

    path = ROOT / "docs" / "claims.md"
    assert path.is_file() and path.read_text() == claims_markdown(), (
        "docs/claims.md is out of date: run `mlreads docs` (or `make docs`) and commit it"
    )


def test_readme_references_only_what_the_repo_has():
    text = README.read_text()
    for gone in ("CLAIMS.md", "DESIGN.md", "CLASSICS.md", "issue notes", "shared folder"):
        assert gone not in text, f"README.md refers to {gone!r}, which is not in the repository"
    for target in re.findall(r"\]\((?!https?://|#)([^)\s]+)\)", text):
        assert (ROOT / target.split("#")[0]).exists(), f"README.md links to {target}, which does not exist"


@pytest.mark.parametrize("line, body, skipped", blocks("python") or [(0, "", True)], ids=lambda x: str(x)[:20])
def test_readme_python_snippets_run(line, body, skipped, tmp_path):
    if skipped:
        pytest.skip(f"README.md line {line}: marked <!-- no-test -->" if line else "README.md has no python block")
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "OMP_NUM_THREADS": "1", "MPLBACKEND": "Agg"}
    proc = subprocess.run([sys.executable, "-c", body], cwd=tmp_path, capture_output=True, text=True, timeout=180,
                          env=env)  # fmt: skip
    assert proc.returncode == 0, f"README.md python block at line {line} fails:\n{proc.stderr[-3000:]}"


def _commands() -> list[tuple[int, list[str]]]:
    found = []
    for line, body, skipped in blocks("bash"):
        if skipped:
            continue
        for i, raw in enumerate(body.splitlines()):
            argv = shlex.split(raw, comments=True)
            if argv[:3] == ["python", "-m", "mlreads"]:
                argv = ["mlreads", *argv[3:]]
            if argv and argv[0] in ("mlreads", ".venv/bin/mlreads"):
                found.append((line + i, argv[1:]))
    return found


@pytest.mark.parametrize("line, argv", _commands() or [(0, [])], ids=lambda x: " ".join(x) if isinstance(x, list) else str(x))
def test_readme_commands_run_as_written(line, argv, tmp_path, capsys):
    from mlreads import cli

    if not argv:
        pytest.skip("README.md has no mlreads command")
    if argv[0] == "publish":
        pytest.skip("publish needs real run folders")
    if argv[0] == "run":
        argv = [*argv, "--dry-run"]
    if argv[0] == "report":
        argv = [a if a != "runs" else str(tmp_path / "runs") for a in argv] + ["--out", str(tmp_path / "report")]
        (tmp_path / "runs").mkdir()
    if argv[0] == "docs" and "--check" not in argv:
        argv = [*argv, "--check"]
    rc = cli.main(argv)
    err = capsys.readouterr().err
    assert rc == 0, f"README.md line {line}: `mlreads {' '.join(argv)}` exits {rc}: {err.strip()}"


def test_the_help_in_a_fresh_process():
    proc = subprocess.run([sys.executable, "-m", "mlreads", "--help"], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": str(ROOT / "src")})  # fmt: skip
    assert proc.returncode == 0 and "list" in proc.stdout and "publish" in proc.stdout

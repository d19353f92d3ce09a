"""README.md and the pages under docs/ tell the truth: the README's results table is the ledger's, their commands run
as written, their Python snippets run, they reference only files in the repository, and docs/claims.md is the
registry's.

- The results table lives between `<!-- results:start -->` and `<!-- results:end -->`; `mlreads readme-table` prints
  it from the ledger (`results/`).
- ```python blocks run in a subprocess (a fresh interpreter, 1 thread, a short timeout). A block that needs a trained
  model or minutes is marked by a `<!-- no-test -->` line right above its fence.
- `mlreads ...` lines of ```bash blocks run in process: `run` lines with `--dry-run` added (ids, overrides and data are
  checked, nothing trains), `report` lines into a temporary folder; `publish` and `inspect` lines need run folders
  and are skipped.
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
# The hand-written documentation: the README (the front door) and the pages it links under docs/ (claims.md is
# generated, and checked against the registry below).
DOCS = [README, *sorted(p for p in (ROOT / "docs").glob("*.md") if p.name != "claims.md")]
FENCE = re.compile(r"(?P<before>[^\n]*)\n```(?P<lang>[a-z]*)\n(?P<body>.*?)\n```", re.S)


def blocks(lang: str) -> list[tuple[str, str, bool]]:
    """(where: "FILE line N", body, skipped) of every fenced block in `lang`, in every documentation page."""
    out = []
    for doc in DOCS:
        text = doc.read_text()
        for m in FENCE.finditer(text):
            if m["lang"] == lang:
                line = text[: m.start("body")].count("\n") + 1
                out.append((f"{doc.relative_to(ROOT)} line {line}", m["body"], m["before"].strip() == "<!-- no-test -->"))
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


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_docs_reference_only_what_the_repo_has(doc):
    text = doc.read_text()
    for gone in ("CLAIMS.md", "DESIGN.md", "CLASSICS.md", "issue notes", "shared folder"):
        assert gone not in text, f"{doc.name} refers to {gone!r}, which is not in the repository"
    for target in re.findall(r"\]\((?!https?://|#)([^)\s]+)\)", text):
        assert (doc.parent / target.split("#")[0]).exists(), f"{doc.name} links to {target}, which does not exist"


def test_the_readme_links_every_docs_page_and_stays_a_front_door():
    text = README.read_text()
    for page in DOCS[1:]:
        assert f"(docs/{page.name})" in text, f"README.md does not link docs/{page.name}"
    assert len(text.splitlines()) <= 250, "README.md is the front door: move detail into a docs/ page"


@pytest.mark.parametrize("line, body, skipped", blocks("python") or [("", "", True)], ids=lambda x: str(x)[:24])
def test_readme_python_snippets_run(line, body, skipped, tmp_path):
    if skipped:
        pytest.skip(f"{line}: marked <!-- no-test -->" if line else "the docs have no python block")
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "OMP_NUM_THREADS": "1", "MPLBACKEND": "Agg"}
    proc = subprocess.run([sys.executable, "-c", body], cwd=tmp_path, capture_output=True, text=True, timeout=180,
                          env=env)  # fmt: skip
    assert proc.returncode == 0, f"the python block of {line} fails:\n{proc.stderr[-3000:]}"


def _commands() -> list[tuple[str, list[str]]]:
    found = []
    for line, body, skipped in blocks("bash"):
        if skipped:
            continue
        for i, raw in enumerate(body.splitlines()):
            argv = shlex.split(raw, comments=True)
            if argv[:3] == ["python", "-m", "mlreads"]:
                argv = ["mlreads", *argv[3:]]
            if argv and argv[0] in ("mlreads", ".venv/bin/mlreads"):
                where, n = line.rsplit(" ", 1)
                found.append((f"{where} {int(n) + i}", argv[1:]))
    return found


@pytest.mark.parametrize("line, argv", _commands() or [("", [])], ids=lambda x: " ".join(x) if isinstance(x, list) else str(x))
def test_readme_commands_run_as_written(line, argv, tmp_path, capsys):
    from mlreads import cli

    if not argv:
        pytest.skip("the docs have no mlreads command")
    if argv[0] in ("publish", "inspect"):
        pytest.skip(f"{argv[0]} needs real run folders")
    if argv[0] == "run":
        argv = [*argv, "--dry-run"]
    if argv[0] == "report":
        argv = [a if a != "runs" else str(tmp_path / "runs") for a in argv] + ["--out", str(tmp_path / "report")]
        (tmp_path / "runs").mkdir()
    if argv[0] == "docs" and "--check" not in argv:
        argv = [*argv, "--check"]
    rc = cli.main(argv)
    err = capsys.readouterr().err
    assert rc == 0, f"{line}: `mlreads {' '.join(argv)}` exits {rc}: {err.strip()}"


def test_the_help_in_a_fresh_process():
    proc = subprocess.run([sys.executable, "-m", "mlreads", "--help"], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": str(ROOT / "src")})  # fmt: skip
    assert proc.returncode == 0 and "list" in proc.stdout and "publish" in proc.stdout


def test_code_and_notes_name_no_file_outside_the_repository():
    """The founding notes (claims, classics, design) are not part of the repository: code, notes, docs and the Makefile
    must not send a reader to them."""
    gone = re.compile(r"\b(CLAIMS|CLASSICS|DESIGN|STYLE)\.md\b")
    sources = [*ROOT.glob("src/**/*.py"), *ROOT.glob("benchmarks/*.py"), *ROOT.glob("docs/*.md"), ROOT / "Makefile",
               README, ROOT / "results" / "README.md"]  # fmt: skip
    found = [f"{p.relative_to(ROOT)}:{i}" for p in sources for i, line in enumerate(p.read_text().splitlines(), 1)
             if gone.search(line)]  # fmt: skip
    assert not found, f"references to files that are not in the repository: {found[:10]}"

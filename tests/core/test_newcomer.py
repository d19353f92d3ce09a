"""The newcomer's list: what a new user tries first works as the help says (show without torch, prefixes in show and
run, reading-list order, the help's own examples, plurals)."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from mlreads import cli
from mlreads.core.papers import READING_LIST
from mlreads.core.run.registry import load_all

sys.path.insert(0, str(Path(__file__).parent))
from cli_capture import run_cli

SRC = Path(__file__).resolve().parents[2] / "src"


def test_show_reads_the_cached_catalogue_and_imports_no_torch(tmp_path):
    code = ("import sys; from mlreads import cli; rc = cli.main(['show', 'gpt/char', 's4/']); "
            "print('HEAVY', [m for m in ('torch', 'matplotlib') if m in sys.modules]); sys.exit(rc)")  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(SRC), "MLREADS_DATA": str(tmp_path)}
    for _ in range(2):  # the first builds the catalogue (and imports torch to do so); the second reads it
        proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300,
                              cwd=SRC.parent)  # fmt: skip
        assert proc.returncode == 0, proc.stderr
    assert "HEAVY []" in proc.stdout, "a cached `mlreads show` imports neither torch nor matplotlib"
    assert proc.stdout.startswith("gpt/char-lm\n") and "\ns4/" in proc.stdout
    assert "published results:" in proc.stdout  # from the ledger (results/ of the clone)


def test_a_unique_prefix_names_its_experiment_in_show_and_run(tmp_path):
    code, out, _ = run_cli(["show", "gpt/char"])
    assert code == 0 and out.startswith("gpt/char-lm\n")
    code, out, err = run_cli(["run", "gpt/char", "--dry-run", "--out", str(tmp_path)])
    assert code == 0 and out.startswith("would run gpt/char-lm "), err
    code, _, err = run_cli(["run", "s4/s", "--dry-run"])  # s4/smnist and s4/s4d-vs-s4?: more than one: say which
    starts = [i for i in load_all() if i.startswith("s4/s")]
    if len(starts) > 1:
        assert code == 2 and "starts" in err and all(i in err for i in starts[:6]), err


def test_a_paper_prefix_runs_in_reading_list_order(tmp_path):
    code, out, err = run_cli(["run", "circuits/", "all", "--dry-run", "--out", str(tmp_path)])
    assert code == 0, err
    ran = [line.split()[2] for line in out.splitlines() if line.startswith("would run")]
    circuits = [i for i in load_all() if i.startswith("circuits/")]  # declared in the reading list's order
    assert ran[: len(circuits)] == circuits
    papers = [p.prefix for p in READING_LIST]
    rest = ran[len(circuits) :]  # 'all' adds the others, each once, paper by paper in the reading list's order
    assert sorted(papers.index(i.split("/")[0]) for i in rest) == [papers.index(i.split("/")[0]) for i in rest]
    assert len(ran) == len(set(ran)) == len(load_all())


def test_every_example_of_run_help_plans(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Path("my_corpus.txt").write_text("To be, or not to be, that is the question. " * 40)
    examples = [line.split("  ")[1].strip() for line in cli.RUN_EXAMPLES.splitlines()
                if line.startswith("  mlreads run ")]  # fmt: skip
    assert len(examples) >= 6 and any("n_layers" in e for e in examples)
    for example in examples:
        argv = shlex.split(example)[1:]
        code, _, err = run_cli([*argv, "--dry-run", "--out", str(tmp_path / "runs")])
        assert code == 0, f"{example}: {err}"


def test_plural_says_one_thing_once():
    from mlreads.core.fmt import plural

    assert [plural(n, "claim") for n in (0, 1, 2)] == ["0 claims", "1 claim", "2 claims"]
    assert plural(1, "entry", "entries") == "1 entry" and plural(3, "entry", "entries") == "3 entries"


@pytest.mark.parametrize("threads, text", [(1, "1 thread,"), (2, "2 threads,")])
def test_a_ledger_page_says_1_thread(toy, tmp_path, fake_publish, threads, text):
    import json

    results = tmp_path / "results"
    path = fake_publish(results, "toytest/threshold", "quick", 0, "pass", 1.5)
    entry = json.loads(path.read_text())
    entry["published"]["threads"] = threads
    path.write_text(json.dumps(entry))
    assert cli.main(["report", "--runs", "none", "--results", str(results), "--out", str(tmp_path / "rep")]) == 0
    (page,) = (tmp_path / "rep" / "ledger").rglob("index.html")
    assert text in page.read_text()


def _wide_run(cfg, ctx):
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(20, 2))  # 2,200 px at the report's 110 dpi
    ax.plot(range(10))
    ctx.savefig(fig, "wide", caption="a wide grid")
    fig, ax = plt.subplots(figsize=(4, 3))
    ax.plot(range(3))
    ctx.savefig(fig, "narrow", caption="a narrow plot")
    return {"value": 2.0, "accs": [100.0] * 11 + [99.5], "per_class": {str(i): i / 10 for i in range(10)}}


def test_a_run_page_links_wide_figures_and_shows_lists_and_notes_in_full(toy, tmp_path, monkeypatch):
    import dataclasses
    import html

    from mlreads.core.run import registry

    notes = ("Anchor: the first paragraph says where the claim comes from. " * 6 + "Deviations: what differs. "
             + "More on it, e.g. this, and so on. " * 20)  # fmt: skip
    exp = dataclasses.replace(toy, run=_wide_run, notes=notes)
    monkeypatch.setitem(registry.REGISTRY, exp.id, exp)
    assert cli.main(["run", exp.id, "--out", str(tmp_path / "runs")]) == 0
    assert cli.main(["report", "--runs", str(tmp_path / "runs"), "--results", str(tmp_path),
                     "--out", str(tmp_path / "rep")]) == 0  # fmt: skip
    (page,) = (tmp_path / "rep" / "runs").rglob("index.html")
    text = html.unescape(page.read_text())
    assert text.count("Open the full-size image") == 1 and '<a href="wide.png">' in text
    assert "[100, 100, 100, 100, 100, 100, 100, 100, 100, 100, 100, 99.5]" in text and "items)" not in text
    assert "9: 0.9}" in text
    notes_html = text.split("<h2>Notes</h2>")[1].split("<h2>")[0]
    assert notes_html.count("<p>") >= 3 and "<p>Deviations: what differs." in notes_html
    assert "e.g. this" in notes_html  # an abbreviation does not end a sentence

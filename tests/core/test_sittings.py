"""A run that stops and resumes is one run in several sittings: each sitting is on record in result.json (and so in
the ledger), the run's elapsed and CPU time are summed over them, and a run whose sittings ran from different
sources cannot be published as one (core/run/sittings.py; issue 26)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from mlreads.core.errors import UserError
from mlreads.core.run.sittings import FILE, KILLED, Sittings, read

sys.path.insert(0, str(Path(__file__).parent))
from test_resume_exact import SETS, _folder, _run


def test_a_resumed_run_lists_its_sittings_and_sums_their_times(ckpt_toy, tmp_path):
    code, _, err = _run(tmp_path, *SETS, sigint_at=12)
    assert code == 130, err
    stopped_at = int(err.split(" at step ")[1].split()[0])  # a signal checkpoints the step it stops at
    folder = _folder(tmp_path, *SETS)
    first = json.loads((folder / FILE).read_text())
    assert [s["ended"] for s in first] == ["stopped"]
    assert _run(tmp_path, *SETS, extra=("--resume",))[0] == 0
    result = json.loads((folder / "result.json").read_text())
    sittings = result["sittings"]
    assert [s["ended"] for s in sittings] == ["stopped", "completed"]
    assert sittings[0]["resumed_from"] == {} and list(sittings[1]["resumed_from"].values()) == [stopped_at]
    assert result["cpu_s"] == pytest.approx(sum(s["cpu_s"] for s in sittings), abs=2e-3)
    assert result["elapsed_s"] == pytest.approx(sum(s["elapsed_s"] for s in sittings), abs=2e-3)
    assert result["elapsed_s"] > sittings[1]["elapsed_s"]  # the first sitting counts too


def test_an_uninterrupted_run_has_no_sittings_and_a_fresh_run_forgets_the_old_ones(ckpt_toy, tmp_path):
    assert _run(tmp_path, *SETS)[0] == 0
    folder = _folder(tmp_path, *SETS)
    assert "sittings" not in json.loads((folder / "result.json").read_text())
    assert _run(tmp_path, *SETS, sigint_at=12, extra=("--overwrite",))[0] == 130
    assert (folder / FILE).is_file()
    assert _run(tmp_path, *SETS, extra=("--overwrite",))[0] == 0  # a fresh run, not a resumption
    assert "sittings" not in json.loads((folder / "result.json").read_text())


def test_a_sitting_killed_without_warning_is_on_record_up_to_its_last_checkpoint(tmp_path):
    first = Sittings(tmp_path, resume=False)
    first.begin("abc", False, 1)
    first.record("running")  # what a checkpoint writes; then the process is killed
    again = Sittings(tmp_path, resume=True)
    assert [s["ended"] for s in again.earlier] == [KILLED] and again.resumed_run
    assert read(tmp_path / "nowhere") == []
    (tmp_path / FILE).write_text("not json")
    assert read(tmp_path) == []


def _result_with_sittings(tmp_path, commits):
    from mlreads.core.run.results import validate

    run = tmp_path / "run"
    run.mkdir(parents=True)
    result = {"id": "toy/x", "budget": "quick", "seed": 0, "verdict": "pass",
              "checks": [{"name": "c", "passed": True}], "preconditions": [], "elapsed_s": 3.0, "cpu_s": 2.0,
              "env": {"commit": commits[-1], "dirty": False},
              "sittings": [{"commit": c, "dirty": False, "elapsed_s": 1.5, "cpu_s": 1.0} for c in commits]}  # fmt: skip
    validate(result)
    (run / "result.json").write_text(json.dumps(result))
    return run


def test_publish_keeps_the_sittings_and_refuses_sittings_from_different_sources(tmp_path):
    from mlreads.core.report.ledger import publish

    entry = publish(_result_with_sittings(tmp_path / "a", ["c1", "c1"]), tmp_path / "results")
    assert len(json.loads(entry.read_text())["sittings"]) == 2
    with pytest.raises(UserError, match="different sources"):
        publish(_result_with_sittings(tmp_path / "b", ["c0", "c1"]), tmp_path / "results2")


def test_the_claim_page_says_a_run_was_resumed(tmp_path):
    from mlreads.core.report.page import run_page

    result = json.loads((_result_with_sittings(tmp_path, ["c1", "c1"]) / "result.json").read_text())
    result["sittings"][1]["resumed_from"] = {"train": 300}
    assert "in 2 sittings" in run_page(result, [], "index.html") and "train from step 300" in run_page(result, [], "")
    del result["sittings"]
    assert "sittings" not in run_page(result, [], "index.html")

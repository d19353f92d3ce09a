"""Stages of a run that outlive a sitting (core/run/stages.py; issue 26): the hours of evaluation after a full run's
training are kept stage by stage, and a resumed run reads the finished stages back, its random generators where
they were, so that it ends with the same numbers as a run that never stopped."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import torch

from mlreads.core.run import runfolder
from mlreads.core.run.stages import Stages, fingerprint


def _draw(gen: torch.Generator, calls: list) -> dict:
    calls.append(1)
    return {"x": torch.rand(3, generator=gen).tolist(), "t": (1, 2)}


def test_a_finished_stage_is_read_back_with_its_generator_state(tmp_path):
    model = torch.nn.Linear(3, 2)
    first_calls, gen = [], torch.Generator().manual_seed(0)
    first = Stages(tmp_path, resume=False)
    a = first.run("a", lambda: _draw(gen, first_calls), [gen], model)
    after_a = torch.rand(1, generator=gen).item()  # what the work after stage a draws in an unbroken run
    assert a == {"x": a["x"], "t": [1, 2]}  # the JSON round trip, in the first sitting too

    calls, gen2 = [], torch.Generator().manual_seed(0)
    again = Stages(tmp_path, resume=True)
    assert again.run("a", lambda: _draw(gen2, calls), [gen2], model) == a
    assert calls == []  # not run again
    assert torch.rand(1, generator=gen2).item() == after_a  # the generator continues where stage a left it


def test_a_stage_runs_again_when_its_model_changed_or_the_run_is_fresh(tmp_path):
    model = torch.nn.Linear(3, 2)
    gen = torch.Generator().manual_seed(0)
    Stages(tmp_path, resume=False).run("a", lambda: _draw(gen, []), [gen], model)
    calls = []
    Stages(tmp_path, resume=False).run("a", lambda: _draw(gen, calls), [gen], model)
    assert calls == [1]  # without --resume nothing is read back
    with torch.no_grad():
        model.weight[0, 0] += 1e-6
    calls = []
    Stages(tmp_path, resume=True).run("a", lambda: _draw(gen, calls), [gen], model)
    assert calls == [1]  # a model that differs by one weight is not the model the stage measured


def test_fingerprint_sees_every_value():
    model = torch.nn.Linear(4, 4)
    fp = fingerprint(model)
    assert fingerprint(model) == fp
    with torch.no_grad():
        model.bias[3] = model.bias[3] + 1e-7
    assert fingerprint(model) != fp


def test_bad_stages_are_refused(tmp_path):
    stages = Stages(tmp_path, resume=False)
    with pytest.raises(TypeError, match="not JSON"):
        stages.run("t", lambda: {"x": torch.zeros(2)})
    stages.run("ok", lambda: 1)
    with pytest.raises(ValueError, match="run twice"):
        stages.run("ok", lambda: 1)


def test_stage_files_count_as_checkpoints_and_go_when_the_run_completes(tmp_path):
    stages = Stages(tmp_path / "checkpoints" / "stages", resume=False)
    assert not runfolder.has_checkpoints(tmp_path)
    stages.run("test-L64", lambda: [1.0])
    assert runfolder.has_checkpoints(tmp_path)  # a stopped run with finished stages is resumable
    stages.clear()
    assert not runfolder.has_checkpoints(tmp_path)


def test_induction_extrapolation_resumed_after_its_tests_reads_them_back_and_ends_the_same(tmp_path, monkeypatch,
                                                                                          capsys):
    """The experiment whose full run tests for hours: a run stopped after its length tests, resumed, runs none of
    them again and ends with the metrics of the unbroken run."""
    from mlreads.core.run.registry import load_all
    from mlreads.core.run.runner import run_experiment
    from mlreads.mamba import exp_induction_extrapolation as mod

    exp = load_all()["mamba/induction-extrapolation"]
    whole = run_experiment(exp, "smoke", out=tmp_path / "a", threads=1)

    def stop_at_retention(*a, **k):
        raise KeyboardInterrupt

    real, real_hits = mod.induction_test, mod.induction_hits
    monkeypatch.setattr(mod, "memory_horizon", stop_at_retention)  # stops after every test stage has finished
    with pytest.raises(KeyboardInterrupt):
        run_experiment(exp, "smoke", out=tmp_path / "b", threads=1)
    folder = next((tmp_path / "b").glob("mamba/induction-extrapolation/smoke-s0"))
    kept = sorted(p.stem for p in (folder / "checkpoints" / "stages").glob("*.json"))
    n = whole["metrics"]["n_test"]  # one part per length at smoke
    assert kept == sorted([*(f"test-L{L}-seq0-{n}" for L in whole["metrics"]["lengths"]), "retention-curve",
                           f"retention-longest-seq0-{n}"])  # fmt: skip
    monkeypatch.undo()
    tested = []
    monkeypatch.setattr(mod, "induction_test", lambda *a, **k: tested.append(1) or real(*a, **k))  # the curve
    monkeypatch.setattr(mod, "induction_hits", lambda *a, **k: tested.append(1) or real_hits(*a, **k))  # the tests
    capsys.readouterr()
    resumed = run_experiment(exp, "smoke", out=tmp_path / "b", threads=1, resume=True)
    assert tested == []  # every test read back
    err = capsys.readouterr().err
    assert all(f"stage {name}: read back (finished in an earlier sitting)" in err for name in kept), err
    timings = {"eval_s", "eval_s_retention_longest", "train_s_mamba", "eval_peak_growth_mb"}
    assert {k: v for k, v in resumed["metrics"].items() if k not in timings} == \
        {k: v for k, v in whole["metrics"].items() if k not in timings}  # fmt: skip
    assert resumed["metrics"]["eval_s"] == json.loads(json.dumps(resumed["metrics"]["eval_s"]))
    (sitting,) = [s for s in resumed["sittings"] if s.get("stages_reused")]
    assert len(sitting["stages_reused"]) == len(kept)
    assert not (folder / "checkpoints" / "stages").exists()  # the completed run's stages are gone


def test_the_run_page_counts_the_stages_read_back(tmp_path):
    from mlreads.core.report.page import run_page

    sys.path.insert(0, str(Path(__file__).parent))
    from test_sittings import _result_with_sittings

    result = json.loads((_result_with_sittings(tmp_path, ["c1", "c1"]) / "result.json").read_text())
    result["sittings"][1].update(resumed_from={"induction/mamba": 18000}, stages_reused=["test-L64", "test-L128"])
    page = run_page(result, [], "index.html")
    assert "in 2 sittings" in page and "induction/mamba from step 18000; 2 finished stages read back" in page


def test_a_long_test_in_parts_draws_what_one_unbroken_test_draws_and_resumes_mid_length(tmp_path, monkeypatch,
                                                                                      capsys):
    """A test of an hour (2^20 tokens x 400 sequences) is split into stages of whole passes: the sequences tested are
    the unsplit test's, in order, and a run stopped inside a length resumes after the last finished part of it."""
    from mlreads.core.run.registry import load_all
    from mlreads.core.run.runner import run_experiment
    from mlreads.mamba import exp_common
    from mlreads.mamba import exp_induction_extrapolation as mod

    exp = load_all()["mamba/induction-extrapolation"]
    for module in (mod, exp_common):  # passes of 16 sequences
        monkeypatch.setattr(module, "per_pass", lambda task, seq_len, max_batch=None: 16)
    real_heads, real_hits = exp_common.induction_heads, mod.induction_hits
    drawn, testing, parts = [], [False], []  # the test sequences drawn, in order; the parts' sizes

    def recording_heads(*a, **k):
        x, answer = real_heads(*a, **k)
        if testing[0]:
            drawn.append(x.flatten())
        return x, answer

    def hits(*a, **k):  # a: model, task, seq_len, gen, n, ...
        parts.append((a[2], a[4]))
        if stop_at[0] and len(parts) == stop_at[0]:
            raise KeyboardInterrupt
        testing[0] = True
        try:
            return real_hits(*a, **k)
        finally:
            testing[0] = False

    monkeypatch.setattr(exp_common, "induction_heads", recording_heads)
    monkeypatch.setattr(mod, "induction_hits", hits)
    stop_at = [0]
    whole = run_experiment(exp, "smoke", out=tmp_path / "a", threads=1)  # one stage per length
    unbroken, L = torch.cat(drawn), whole["metrics"]["lengths"][0]
    drawn.clear(), parts.clear()
    monkeypatch.setattr(mod, "STAGE_TOKENS", 3 * 16 * L)  # parts of three passes at L (48 + 48 + 32), of one from 4L on
    stop_at = [3]
    with pytest.raises(KeyboardInterrupt):
        run_experiment(exp, "smoke", out=tmp_path / "b", threads=1)
    folder = next((tmp_path / "b").glob("mamba/induction-extrapolation/smoke-s0"))
    assert sorted(p.stem for p in (folder / "checkpoints" / "stages").glob("*.json")) == [f"test-L{L}-seq0-48",
                                                                                          f"test-L{L}-seq48-96"]
    assert [n for _, n in parts] == [48, 48, 32], "the last part takes the rest"

    done_before = parts[0][1] + parts[1][1]
    parts.clear()
    stop_at = [0]
    capsys.readouterr()
    resumed = run_experiment(exp, "smoke", out=tmp_path / "b", threads=1, resume=True)
    assert f"stage test-L{L}-seq48-96: read back" in capsys.readouterr().err
    # at length L only what the first sitting had not finished is tested again: from the third part on
    assert sum(n for length, n in parts if length == L) == whole["metrics"]["n_test"] - done_before
    assert torch.equal(torch.cat(drawn), unbroken), "the parts drew the unbroken test's sequences, in order"
    timings = {"eval_s", "eval_s_retention_longest", "train_s_mamba", "eval_peak_growth_mb"}
    assert {k: v for k, v in resumed["metrics"].items() if k not in timings} == \
        {k: v for k, v in whole["metrics"].items() if k not in timings}  # fmt: skip

"""The boundary between the CLI and the runner: one RunRequest, planned once before anything runs,
executed by the runner; failures cross as typed errors (OutOfMemory, RunFailed), never recognised by message text."""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path

import pytest
import torch

from mlreads import cli
from mlreads.core.errors import OutOfMemory, RunFailed, UserError, cpu_allocation_failed
from mlreads.core.run import registry, runner
from mlreads.core.run.request import RunRequest, plan

sys.path.insert(0, str(Path(__file__).parent))
from cli_capture import assert_one_line_exit_2, run_cli


def _register(toy, monkeypatch, run):
    """The toy experiment with another run function, registered under its own id."""
    exp = dataclasses.replace(toy, run=run)
    monkeypatch.setitem(registry.REGISTRY, exp.id, exp)
    return exp


# --------------------------------------------------------------------------- planned once, before anything runs


def test_a_bad_set_for_the_second_experiment_is_refused_before_the_first_runs(ckpt_toy, toy, tmp_path):
    # `toytest/` is toytest/ckpt, then toytest/threshold; lr is a field of the first only
    code, out, err = run_cli(["run", "toytest/", "--out", str(tmp_path), "--set", "lr=0.02"])
    assert_one_line_exit_2(code, err)
    assert "toytest/threshold: --set lr" in err and "unknown key 'lr'" in err
    assert out == "" and not (tmp_path / "toytest").exists(), "the first experiment did not run"
    # the runner's own plan refuses the same request, with nothing written
    with pytest.raises(UserError, match="toytest/threshold"):
        plan(RunRequest((ckpt_toy, toy), out=tmp_path / "api", overrides={"lr": "0.02"}))
    assert not (tmp_path / "api").exists()


def test_a_dry_run_plans_and_runs_nothing(toy, tmp_path):
    planned = plan(RunRequest((toy,), out=tmp_path / "runs", overrides={"value": "3"}, dry_run=True))
    assert [r.cfg.value for r in planned.runs] == [3.0] and planned.runs[0].folder.parent == tmp_path / "runs" / toy.id
    assert list(runner.execute(planned)) == [] and not (tmp_path / "runs").exists()


def test_a_hand_built_request_runs_through_the_same_code_as_the_cli(toy, tmp_path, monkeypatch):
    calls = []
    real = runner.run_planned
    monkeypatch.setattr(runner, "run_planned", lambda request, run: calls.append(run.exp.id) or real(request, run))
    request = RunRequest((toy,), "smoke", seed=3, out=tmp_path / "api", overrides={"steps": "4"}, threads=1)
    (outcome,) = runner.execute(plan(request))
    assert outcome.status == 0 and outcome.result["verdict"] == "pass" and outcome.stopped is None
    assert cli.main(["run", toy.id, "--seed", "3", "--out", str(tmp_path / "cli"), "--set", "steps=4"]) == 0
    assert calls == [toy.id, toy.id], "both went through runner.run_planned"
    folder = outcome.run.folder
    assert folder == tmp_path / "api" / toy.id / folder.name and folder.name.startswith("smoke-s3-")
    api, by_cli = (json.loads((root / toy.id / folder.name / "result.json").read_text()) for root in
                   (tmp_path / "api", tmp_path / "cli"))  # fmt: skip
    for r in (api, by_cli):
        del r["env"], r["elapsed_s"], r["cpu_s"]  # timings
    assert api == by_cli and api["overrides"] == {"steps": "4"} and api["config"]["steps"] == 4


def test_run_experiment_plans_through_the_same_checks(toy, tmp_path):
    (tmp_path / "file").write_text("")
    with pytest.raises(UserError, match="cannot write to --out"):  # check_writable: the plan's, not a copy
        runner.run_experiment(toy, "smoke", out=tmp_path / "file" / "runs")
    with pytest.raises(UserError, match="contradict"):  # the plan's pre-flight, before any folder is made
        runner.run_experiment(toy, "smoke", out=tmp_path / "runs", resume=True, overwrite=True)
    assert not (tmp_path / "runs" / toy.id).exists()


# --------------------------------------------------------------------------- typed errors


def _raising(err: BaseException):
    def run(cfg, ctx):
        raise err

    return run


def _cpu_allocation(cfg, ctx):
    torch.empty(2**62, dtype=torch.uint8)  # a real failed CPU allocation: a plain RuntimeError from torch


@pytest.mark.parametrize("fail", [
    _raising(runner.TORCH_OOM("CUDA out of memory. Tried to allocate 2.00 GiB")), _raising(MemoryError()),
    _cpu_allocation, _raising(OutOfMemory("toytest/threshold ran out of memory: raised as a type")),
], ids=["cuda", "MemoryError", "cpu-allocator", "typed"])  # fmt: skip
def test_out_of_memory_is_one_line_and_exit_2(fail, toy, tmp_path, monkeypatch):
    exp = _register(toy, monkeypatch, fail)
    code, _, err = run_cli(["run", exp.id, "--out", str(tmp_path)])
    assert_one_line_exit_2(code, err)
    assert f"{exp.id} ran out of memory" in err
    with pytest.raises(OutOfMemory):  # the runner raises the type; the CLI only prints it
        runner.run_experiment(exp, "smoke", out=tmp_path / "api")


def test_a_runtime_error_that_mentions_allocate_is_not_out_of_memory(toy, tmp_path, monkeypatch):
    exp = _register(toy, monkeypatch, _raising(RuntimeError("could not allocate a port for the dashboard")))
    with pytest.raises(RuntimeError, match="could not allocate a port"):  # a bug: its traceback is kept
        cli.main(["run", exp.id, "--out", str(tmp_path)])


def test_cpu_allocation_failed_reads_only_a_plain_runtime_error():
    try:
        torch.empty(2**62, dtype=torch.uint8)
    except RuntimeError as err:
        assert cpu_allocation_failed(err)
    assert not cpu_allocation_failed(RuntimeError("tried to allocate a slot"))
    assert not cpu_allocation_failed(type("Other", (RuntimeError,), {})("can't allocate memory"))
    assert not cpu_allocation_failed(ValueError("can't allocate memory"))


def test_a_crash_under_set_values_is_run_failed_with_the_traceback_saved(toy, tmp_path, monkeypatch):
    def fail(cfg, ctx):
        raise ValueError(f"no model has {cfg.steps} steps")

    exp = _register(toy, monkeypatch, fail)
    code, _, err = run_cli(["run", exp.id, "--out", str(tmp_path), "--set", "steps=7"])
    assert_one_line_exit_2(code, err)
    assert f"{exp.id} failed with these --set values (ValueError: no model has 7 steps); check them" in err
    with pytest.raises(RunFailed) as info:
        runner.run_experiment(exp, "smoke", out=tmp_path / "api", overrides={"steps": "7"})
    folder = info.value.folder
    assert folder.parent == tmp_path / "api" / exp.id and info.value.traceback == folder / "error.txt"
    assert "ValueError: no model has 7 steps" in info.value.traceback.read_text()
    with pytest.raises(ValueError, match="no model has 3 steps"):  # without --set values: a bug, traceback kept
        cli.main(["run", exp.id, "--out", str(tmp_path)])


# --------------------------------------------------------------------------- threads: the experiment's default


def test_threads_default_to_the_experiments_own_per_budget_and_flag_overrides(toy, tmp_path, monkeypatch):
    two = dataclasses.replace(toy, threads={"quick": 2})
    monkeypatch.setitem(registry.REGISTRY, two.id, two)
    assert two.threads_for("quick") == 2 and two.threads_for("smoke") == 1
    seen = []
    real = runner._run_locked
    monkeypatch.setattr(runner, "_run_locked", lambda exp, budget, seed, path, threads, *a: seen.append(threads)
                        or real(exp, budget, seed, path, threads, *a))  # fmt: skip
    before = torch.get_num_threads()
    try:
        for budget, flag in (("quick", None), ("quick", 1), ("smoke", None)):
            runner.run_experiment(two, budget, out=tmp_path / f"{budget}{flag}", threads=flag)
    finally:
        torch.set_num_threads(before)
    assert seen == [2, 1, 1], "quick takes the experiment's 2, --threads 1 wins, smoke stays at 1"
    result = json.loads((tmp_path / "quickNone" / two.id / "quick-s0" / "result.json").read_text())
    assert result["env"]["threads"] == 2, "the ledger records the threads the run used"
    code, out, _ = run_cli(["run", two.id, "--budget", "quick", "--dry-run", "--out", str(tmp_path / "d")])
    assert code == 0 and "[quick, seed 0, 2 threads]" in out


@pytest.mark.parametrize("threads", [{"smoke": 2}, {"full": 2}, {"quick": 0}])
def test_an_experiment_cannot_ask_threads_for_smoke_a_missing_budget_or_zero(toy, threads):
    with pytest.raises(ValueError, match="threads"):
        dataclasses.replace(toy, threads=threads)

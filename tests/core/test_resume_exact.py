"""Resume never loses, never duplicates, and reproduces the log; a re-run that stops never destroys the finished run.

The toy (tests/core/scripts/toy_cli.py) sends itself SIGINT when it draws its N-th batch (`MLREADS_TOY_SIGINT_AT`),
so a run stops at an exact step, in this process, without changing its config or run folder.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

from mlreads.core.train import latest_checkpoint

sys.path.insert(0, str(Path(__file__).parent))
from cli_capture import assert_one_line_exit_2, run_cli


def _folder(out: Path, *sets: str) -> Path:
    from mlreads.core.run.config import parse_overrides
    from mlreads.core.run.results import run_dir_name

    return out / "toytest/ckpt" / run_dir_name("smoke", 0, parse_overrides(list(sets)))


def _run(out: Path, *sets: str, sigint_at: int = 0, extra: tuple = ()) -> tuple[int, str, str]:
    argv = ["run", "toytest/ckpt", "--out", str(out), *[a for s in sets for a in ("--set", s)], *extra]
    if sigint_at:
        os.environ["MLREADS_TOY_SIGINT_AT"] = str(sigint_at)
    try:
        return run_cli(argv)
    finally:
        os.environ.pop("MLREADS_TOY_SIGINT_AT", None)


def _rows(folder: Path) -> list[dict]:
    return [json.loads(x) for x in (folder / "metrics.jsonl").read_text().splitlines()]


def _without_time(rows: list[dict]) -> list[dict]:
    return [{k: v for k, v in r.items() if k != "elapsed_s"} for r in rows]


# Two models one after the other, logging every 3 steps, checkpointing every 4: the stop lands between log rows and
# between checkpoints, in the second model (batch 1 is the data fingerprint's; batches 2-21 train the first model).
SETS = ("steps=20", "log_every=3", "ckpt_every=4", "models=2")


@pytest.mark.parametrize("sigint_at", [12, 32])  # in the first model (step 11), in the second (step 10)
def test_a_resumed_run_logs_what_the_uninterrupted_run_logs_row_for_row(ckpt_toy, tmp_path, sigint_at):
    assert _run(tmp_path / "whole", *SETS)[0] == 0
    code, _, err = _run(tmp_path / "cut", *SETS, sigint_at=sigint_at)
    assert code == 130 and "stopped by SIGINT at step" in err, err
    step = int(err.split(" at step ")[1].split()[0])
    assert step % 3 and step % 4, step  # not a multiple of the log or checkpoint cadence
    code, _, err = _run(tmp_path / "cut", *SETS, extra=("--resume",))
    assert code == 0, err
    whole, cut = _rows(_folder(tmp_path / "whole", *SETS)), _rows(_folder(tmp_path / "cut", *SETS))
    assert _without_time(cut) == _without_time(whole)  # the log window was saved: each row's mean loss is the same
    times = [r["elapsed_s"] for r in cut]
    model_starts = [i for i in range(1, len(cut)) if cut[i]["step"] < cut[i - 1]["step"]]
    for part in (times[: model_starts[0]], times[model_starts[0] :]):
        assert part == sorted(part), times  # the training time continues across the resume, never restarts at 0
    a = json.loads((_folder(tmp_path / "whole", *SETS) / "result.json").read_text())["metrics"]["w"]
    b = json.loads((_folder(tmp_path / "cut", *SETS) / "result.json").read_text())["metrics"]["w"]
    assert a == b


def test_resume_with_no_checkpoint_starts_clean_without_duplicating_or_losing_rows(ckpt_toy, tmp_path):
    sets = ("ckpt_every=0",)
    folder = _folder(tmp_path, *sets)
    assert _run(tmp_path, *sets)[0] == 0
    before = _without_time(_rows(folder))
    code, _, err = _run(tmp_path, *sets, extra=("--resume",))
    assert code == 0, err
    assert _without_time(_rows(folder)) == before, "each row once"
    # a resume with no checkpoint that stops keeps the finished run's log as it was
    old = (folder / "metrics.jsonl").read_text()
    code, _, err = _run(tmp_path, *sets, sigint_at=4, extra=("--resume",))
    assert code == 130, err
    assert (folder / "metrics.jsonl").read_text() == old


def test_a_step_folder_without_latest_is_resumed_never_overwritten(ckpt_toy, tmp_path):
    assert _run(tmp_path / "whole")[0] == 0
    code, _, err = _run(tmp_path, sigint_at=6)  # stops at step 5 (batch 1 is the fingerprint's) with a checkpoint
    assert code == 130, err
    ck = _folder(tmp_path) / "checkpoints" / "toy"
    (ck / "latest").unlink()  # killed between renaming the checkpoint into place and writing the pointer
    code, _, err = _run(tmp_path, extra=("--resume",))
    assert code == 0 and "toy: resuming from step 5" in err, err
    a = json.loads((_folder(tmp_path / "whole") / "result.json").read_text())["metrics"]["w"]
    assert json.loads((_folder(tmp_path) / "result.json").read_text())["metrics"]["w"] == a


def test_step_folders_none_complete_and_no_latest_are_refused(ckpt_toy, tmp_path):
    code, _, _ = _run(tmp_path, sigint_at=6)
    assert code == 130
    ck = _folder(tmp_path) / "checkpoints" / "toy"
    (ck / "latest").unlink()
    (latest_checkpoint(ck) / "state.json").unlink()
    code, _, err = _run(tmp_path, extra=("--resume",))
    assert_one_line_exit_2(code, err)
    assert "no 'latest' pointer" in err and "step-0000005" in err
    assert (ck / "step-0000005").is_dir(), "the step folder is kept"


@pytest.mark.parametrize("history", [
    [{"step": "x"}], [{"loss": 1.0}], [{"step": 4}, {"step": 2}], [{"step": 99}], [{"step": 2, "loss": "junk"}],
    [{"step": 2, "lr": [1]}], ["row"], [{"step": True}],
])  # fmt: skip
def test_junk_history_in_state_json_is_refused_naming_the_file_not_the_set_values(ckpt_toy, tmp_path, history):
    sets = ("width=3",)  # a --set value, which the refusal must not blame
    assert _run(tmp_path, *sets)[0] == 0
    state = latest_checkpoint(_folder(tmp_path, *sets) / "checkpoints" / "toy") / "state.json"
    data = json.loads(state.read_text())
    data["history"] = history
    state.write_text(json.dumps(data))
    code, _, err = _run(tmp_path, *sets, extra=("--resume",))
    assert_one_line_exit_2(code, err)
    assert "state.json" in err and "history" in err and "--set values" not in err, err


def test_ctrl_c_during_a_rerun_of_a_finished_run_keeps_the_finished_run(ckpt_toy, tmp_path):
    sets = ("ckpt_every=0",)
    folder = _folder(tmp_path, *sets)
    assert _run(tmp_path, *sets)[0] == 0
    before = {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file() and p.name != ".lock"}
    code, _, err = _run(tmp_path, *sets, sigint_at=4)
    assert code == 130 and "the earlier run in the folder is kept as it was" in err, err
    after = {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file() and p.name != ".lock"}
    assert after == before, "the folder holds the finished run alone, as it was"
    assert sorted(p.name for p in folder.iterdir() if p.is_dir()) == []


def test_an_overwrite_stopped_after_its_checkpoints_keeps_the_earlier_run_until_it_completes(ckpt_toy, tmp_path):
    folder = _folder(tmp_path)
    assert _run(tmp_path)[0] == 0
    result = (folder / "result.json").read_bytes()
    code, _, err = _run(tmp_path, sigint_at=6, extra=("--overwrite",))
    assert code == 130 and "resume with" in err, err
    assert not (folder / "result.json").exists(), "the folder is the stopped run's, which --resume continues"
    assert (folder / ".previous" / "result.json").read_bytes() == result, "the earlier run is kept aside"
    assert _run(tmp_path, extra=("--resume",))[0] == 0
    assert not (folder / ".previous").exists()


def test_the_log_drops_a_torn_line_and_finds_the_row_an_older_checkpoint_ends_with(tmp_path):
    from mlreads.core.run.runlog import RunLog

    path = tmp_path / "metrics.jsonl"
    path.write_text('{"step": 1, "loss": 2.0}\n{"step": 2, "loss": 1.5}\n{"step": 3, "lo')  # killed mid-line
    log = RunLog(path, resume=True)
    assert log.find({"step": 2, "loss": 1.5}) == 2 and log.find({"step": 9}) is None
    assert log.seek(2) == 0
    log.write({"step": 3, "loss": 1.25})
    log.close(complete=True)
    assert [json.loads(x)["step"] for x in path.read_text().splitlines()] == [1, 2, 3]
    log = RunLog(path, resume=True)  # a log cut short: the rows before the checkpoint that are missing are counted
    assert log.seek(5) == 2
    log.close(complete=False)


def test_each_logged_row_names_the_model_its_fit_trains(tmp_path):
    """A run that trains several models logs them in one metrics.jsonl: each row carries `fit` (fit's desc), and the
    row an older checkpoint ends with is still found although its history row has no label."""
    import torch
    from torch import nn

    from mlreads.core.run.runlog import RunLog
    from mlreads.core.run.runner import RunContext
    from mlreads.core.train import TrainConfig, fit

    ctx = RunContext(tmp_path, "smoke", 0, 1)
    for name in ("small", "large"):
        model = nn.Linear(3, 1)
        fit(model, TrainConfig(steps=4, lr=0.01, log_every=2, schedule="constant"),
            lambda s, g: (x := torch.randn(8, 3, generator=g), x.sum(1, keepdim=True)),
            lambda m, b: ((m(b[0]) - b[1]) ** 2).mean(), ctx=ctx, desc=name)  # fmt: skip
    ctx.close()
    rows = [json.loads(x) for x in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [(r["fit"], r["step"]) for r in rows] == [("small", 2), ("small", 4), ("large", 2), ("large", 4)]
    log = RunLog(tmp_path / "metrics.jsonl", resume=True)
    unlabelled = {k: v for k, v in rows[1].items() if k != "fit"}
    assert log.find(unlabelled) == 2
    log.close(complete=False)

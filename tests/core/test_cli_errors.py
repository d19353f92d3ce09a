"""Errors that say the right thing: a closed pipe, a missing ledger or clone, a dry run that reads the data, the real
cause of a failure instead of the --set values, and which experiments a Ctrl-C left unrun."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from mlreads.core.train import latest_checkpoint

sys.path.insert(0, str(Path(__file__).parent))
from cli_capture import assert_one_line_exit_2, run_cli

SRC = Path(__file__).resolve().parents[2] / "src"


def _env() -> dict:
    return {**os.environ, "PYTHONPATH": str(SRC), "OMP_NUM_THREADS": "1", "MLREADS_PROGRESS": "0"}


def test_a_closed_pipe_ends_quietly_with_the_sigpipe_status(tmp_path):
    """`mlreads list | head -1`: the reader goes away; mlreads stops with no message and 141, as `yes | head` does."""
    (tmp_path / "results").mkdir()  # a ledger here: no warning line
    r, w = os.pipe()
    os.close(r)  # the reader is gone before the first line is written
    proc = subprocess.run([sys.executable, "-m", "mlreads", "list"], stdout=w, stderr=subprocess.PIPE, text=True,
                          env=_env(), cwd=tmp_path, timeout=120)  # fmt: skip
    os.close(w)
    assert proc.returncode == 141, proc.stderr
    assert proc.stderr == "", proc.stderr


def test_outside_the_clone_a_missing_ledger_is_said_in_one_line_never_read_as_empty(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)  # no results/ here
    code, out, err = run_cli(["report", "--runs", "none", "--out", str(tmp_path / "rep")])
    assert code == 0 and err.count("\n") == 1 and "no results ledger here" in err, err
    index = (tmp_path / "rep" / "index.html").read_text()
    assert "claims reproduced" not in index and "no results ledger was read" in index
    code, _, err = run_cli(["list"])
    assert code == 0 and "no results ledger here" in err
    code, _, err = run_cli(["readme-table"])  # from no ledger it would say "not yet measured" everywhere
    assert_one_line_exit_2(code, err)
    for argv in (["list", "--results", "nowhere"], ["show", "gpt/char-lm", "--results", "nowhere"],
                 ["report", "--runs", "none", "--results", "nowhere", "--out", str(tmp_path / "rep")]):  # fmt: skip
        code, _, err = run_cli(argv)
        assert code == 0 and err.count("\n") == 1, err
        assert "no results folder 'nowhere'; published results are not shown" in err, err
    assert "claims reproduced" not in (tmp_path / "rep" / "index.html").read_text()


def test_docs_check_outside_the_clone_says_the_file_is_missing(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, _, err = run_cli(["docs", "--check"])
    assert_one_line_exit_2(code, err)
    assert "docs/claims.md does not exist here" in err and "out of date" not in err


def test_a_dry_run_refuses_a_binary_data_file_as_the_run_does(tmp_path):
    data = tmp_path / "corpus.bin"
    data.write_bytes(b"\x7fELF\x02\x01\x01\x00" * 200)
    code, out, err = run_cli(["run", "gpt/char-lm", "--set", f"data.path={data}", "--dry-run", "--out", str(tmp_path)])
    assert_one_line_exit_2(code, err)
    assert "binary data" in err and "would run" not in out


def test_a_folder_named_metrics_jsonl_is_named_as_the_cause_not_the_set_values(ckpt_toy, tmp_path):
    argv = ["run", "toytest/ckpt", "--out", str(tmp_path), "--set", "width=3"]
    assert run_cli(argv)[0] == 0
    (log,) = tmp_path.rglob("metrics.jsonl")
    log.unlink()
    log.mkdir()  # a fresh run sets the folder's files aside; --resume continues in it and must write its log there
    code, _, err = run_cli([*argv, "--resume"])
    assert_one_line_exit_2(code, err)
    assert "metrics.jsonl" in err and "Is a directory" in err and "--set values" not in err, err


def test_a_corrupt_checkpoint_is_named_as_the_cause_not_the_set_values(ckpt_toy, tmp_path):
    argv = ["run", "toytest/ckpt", "--out", str(tmp_path), "--set", "width=3"]
    assert run_cli(argv)[0] == 0
    (ck,) = tmp_path.rglob("checkpoints/toy")
    weights = latest_checkpoint(ck) / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-7])
    code, _, err = run_cli([*argv, "--resume"])
    assert_one_line_exit_2(code, err)
    assert "model.safetensors" in err and "--set values" not in err, err


def test_ctrl_c_in_a_run_of_several_experiments_names_the_ones_that_never_ran(ckpt_toy, toy, tmp_path):
    os.environ["MLREADS_TOY_SIGINT_AT"] = "3"
    try:
        code, out, err = run_cli(["run", "toytest/", "--out", str(tmp_path)])
    finally:
        del os.environ["MLREADS_TOY_SIGINT_AT"]
    assert code == 130
    line = err.strip().splitlines()[-1]
    assert "stopped by SIGINT" in line and "(toytest/ckpt)" in line, err
    assert line.endswith("1 experiment of this run never started: toytest/threshold"), line
    assert not (tmp_path / "toytest/threshold").exists()

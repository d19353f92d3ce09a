"""Issue 12, classes 4 and 5: no silent overwrite (a lock per run folder, --overwrite for checkpointed runs, no writes
through planted links, a NaN stop that keeps an earlier result) and signals (SIGTERM/SIGINT stop at a step boundary,
write a final checkpoint, say how to resume, exit 143/130), tested in subprocesses."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mlreads import cli
from mlreads.core.run import runfolder
from mlreads.core.train import latest_checkpoint

sys.path.insert(0, str(Path(__file__).parent))
from cli_capture import assert_one_line_exit_2, run_cli

SCRIPTS = Path(__file__).parent / "scripts"
RUN = "toytest/ckpt/smoke-s0"


def run_folder(*sets: str) -> str:
    """The run folder of `toytest/ckpt` at smoke, seed 0, with these `--set` values, the later winning (overridden
    runs get their own folder)."""
    from mlreads.core.run.config import parse_overrides
    from mlreads.core.run.results import run_dir_name

    return f"toytest/ckpt/{run_dir_name('smoke', 0, parse_overrides(list(sets)))}"


START = ("steps=400", "sleep_s=0.02", "ckpt_every=50")  # what _start sets




def _env():
    src = str(Path(cli.__file__).parents[1])
    return {**os.environ, "OMP_NUM_THREADS": "1", "MLREADS_PROGRESS": "0",
            "PYTHONPATH": os.pathsep.join([src, os.environ.get("PYTHONPATH", "")])}  # fmt: skip


# --------------------------------------------------------------------------- the lock


def test_a_second_run_on_a_locked_folder_exits_2_naming_the_holder(ckpt_toy, tmp_path):
    folder = tmp_path / RUN
    folder.mkdir(parents=True)
    holder = subprocess.Popen([sys.executable, "-c", (
        "import sys, time; from pathlib import Path; from mlreads.core.run.runfolder import locked\n"
        "with locked(Path(sys.argv[1])):\n    print('ready', flush=True); time.sleep(60)"), str(folder)],
        stdout=subprocess.PIPE, text=True, env=_env())  # fmt: skip
    try:
        assert holder.stdout.readline().strip() == "ready"
        code, _, err = run_cli(["run", "toytest/ckpt", "--out", str(tmp_path)])
        assert_one_line_exit_2(code, err)
        assert f"in use by pid {holder.pid}" in err
        assert not (folder / "metrics.jsonl").exists(), "the refused run wrote nothing"
    finally:
        holder.kill()
        holder.wait()
    # the holder died: its lock is stale and taken over
    assert run_cli(["run", "toytest/ckpt", "--out", str(tmp_path)])[0] == 0


def test_a_flock_holder_that_wrote_no_name_still_blocks(ckpt_toy, tmp_path):
    folder = tmp_path / RUN
    folder.mkdir(parents=True)
    holder = subprocess.Popen([sys.executable, "-c", (
        "import fcntl, os, sys, time\nfd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT)\n"
        "fcntl.flock(fd, fcntl.LOCK_EX)\nprint('ready', flush=True); time.sleep(60)"), str(folder / ".lock")],
        stdout=subprocess.PIPE, text=True)  # fmt: skip
    try:
        assert holder.stdout.readline().strip() == "ready"
        code, _, err = run_cli(["run", "toytest/ckpt", "--out", str(tmp_path)])
        assert_one_line_exit_2(code, err)
        assert "in use by another process" in err
    finally:
        holder.kill()
        holder.wait()


def test_lock_files_of_dead_or_live_processes(ckpt_toy, tmp_path):
    folder = tmp_path / RUN
    folder.mkdir(parents=True)
    lock = folder / runfolder.LOCK_NAME
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    for stale in (json.dumps({"pid": dead.pid, "host": socket.gethostname()}), "garbage\x00\xff", ""):
        lock.write_text(stale, errors="surrogateescape")
        assert run_cli(["run", "toytest/ckpt", "--out", str(tmp_path), "--overwrite"])[0] == 0
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:  # a lock file written by hand (or over NFS, where flock is not shared) naming a live process is honoured
        lock.write_text(json.dumps({"pid": live.pid, "host": socket.gethostname(), "started": "now"}))
        code, _, err = run_cli(["run", "toytest/ckpt", "--out", str(tmp_path), "--overwrite"])
        assert_one_line_exit_2(code, err)
        assert f"pid {live.pid}" in err
    finally:
        live.kill()
        live.wait()


# --------------------------------------------------------------------------- no silent overwrite


def test_a_checkpointed_folder_needs_resume_or_overwrite(ckpt_toy, tmp_path):
    argv = ["run", "toytest/ckpt", "--out", str(tmp_path)]
    assert run_cli(argv)[0] == 0
    ck = tmp_path / RUN / "checkpoints" / "toy"
    before = latest_checkpoint(ck)
    code, _, err = run_cli(argv)
    assert_one_line_exit_2(code, err)
    assert "--resume" in err and "--overwrite" in err
    assert latest_checkpoint(ck) == before and (before / "model.safetensors").is_file(), "nothing was destroyed"
    assert_one_line_exit_2(*run_cli(argv + ["--resume", "--overwrite"])[::2])
    assert run_cli(argv + ["--overwrite"])[0] == 0
    assert latest_checkpoint(ck).name == before.name and json.loads((tmp_path / RUN / "result.json").read_text())
    # another setting is another run folder: no --overwrite needed, the default run is untouched
    assert run_cli(argv + ["--set", "lr=0.02"])[0] == 0
    assert json.loads((tmp_path / run_folder("lr=0.02") / "result.json").read_text())["config"]["lr"] == 0.02


def test_refused_before_anything_runs_when_a_later_experiment_would_overwrite(ckpt_toy, toy, tmp_path):
    assert run_cli(["run", "toytest/ckpt", "--out", str(tmp_path)])[0] == 0
    code, _, err = run_cli(["run", "toytest/", "--out", str(tmp_path)])  # threshold (fine), then ckpt (checkpointed)
    assert_one_line_exit_2(code, err)
    assert not (tmp_path / "toytest/threshold").exists(), "nothing ran"


def test_links_planted_in_the_run_folder_are_never_written_through(ckpt_toy, tmp_path):
    folder = tmp_path / "runs" / RUN
    folder.mkdir(parents=True)
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    for name in ("metrics.jsonl", "result.json", "checkpoints"):
        link = folder / name
        link.symlink_to(victim)
        code, _, err = run_cli(["run", "toytest/ckpt", "--out", str(tmp_path / "runs")])
        assert_one_line_exit_2(code, err)
        assert "symbolic link" in err or "checkpoints" in err
        assert victim.read_text() == "precious"
        link.unlink()


def test_a_nan_stop_keeps_an_earlier_good_result_and_says_so(ckpt_toy, tmp_path):
    # nan_at=99 never fires: the same folder as the NaN run below, which sets nan_at=3 through the toy's env switch
    argv = ["run", "toytest/ckpt", "--out", str(tmp_path), "--set", "ckpt_every=0"]
    folder = tmp_path / run_folder("ckpt_every=0")
    assert run_cli(argv)[0] == 0
    good = (folder / "result.json").read_text()
    os.environ["MLREADS_TOY_NAN_AT"] = "3"
    try:
        code, out, err = run_cli(argv)
    finally:
        del os.environ["MLREADS_TOY_NAN_AT"]
    assert code == 1 and out.startswith("STOPPED toytest/ckpt") and "Traceback" not in err
    assert "result.previous.json" in out and "verdict pass" in out
    assert (folder / "result.previous.json").read_text() == good
    stopped = json.loads((folder / "result.json").read_text())
    assert stopped["verdict"] == "fail" and "nan" in stopped["stopped"]


# --------------------------------------------------------------------------- signals


def _start(out: Path, *extra: str) -> subprocess.Popen:
    cmd = [sys.executable, str(SCRIPTS / "toy_cli.py"), "run", "toytest/ckpt", "--out", str(out), "--threads", "1",
           "--set", "steps=400", "--set", "sleep_s=0.02", "--set", "ckpt_every=50", *extra]  # fmt: skip
    return subprocess.Popen(cmd, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_for_steps(out: Path, n: int, proc: subprocess.Popen, folder: str = run_folder(*START)) -> None:
    log = out / folder / "metrics.jsonl"
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:
        if log.exists() and len(log.read_text().splitlines()) >= n:
            return
        time.sleep(0.02)
    raise AssertionError(f"the run did not reach step {n}: {proc.poll()} {proc.stderr.read() if proc.poll() else ''}")


@pytest.mark.parametrize("sig, code", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_signal_stops_at_a_step_boundary_with_a_checkpoint_and_the_resume_command(tmp_path, sig, code):
    out = tmp_path / "runs"
    proc = _start(out)
    _wait_for_steps(out, 7, proc)  # between checkpoints (every 50): the final checkpoint is the signal's
    proc.send_signal(sig)
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == code, stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in stderr, stderr
    assert f"stopped by {signal.Signals(sig).name} at step" in lines[0] and "resume with: mlreads run toytest/ckpt" in lines[0]
    assert lines[0].endswith("--resume")
    step = int(lines[0].split(" at step ")[1].split()[0])
    folder = out / run_folder(*START)
    ck = folder / "checkpoints" / "toy"
    assert 7 <= step < 50 and latest_checkpoint(ck).name == f"step-{step:07d}"
    assert not (folder / "result.json").exists()
    # the printed command resumes (here with fewer steps for speed, which --allow-safe-changes accepts)
    proc = _start(out, "--resume", "--allow-safe-changes", "--set", f"steps={step + 3}")
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 0, stderr
    rows = [json.loads(x) for x in (folder / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == list(range(1, step + 4)), "each step logged once, resumed after the stop"


def test_sigterm_resume_is_bit_exact_against_an_uninterrupted_run(tmp_path):
    straight = _start(tmp_path / "a", "--set", "steps=30", "--set", "sleep_s=0.05")
    assert straight.wait(timeout=120) == 0, straight.stderr.read()
    proc = _start(tmp_path / "b", "--set", "steps=30", "--set", "sleep_s=0.05")
    _wait_for_steps(tmp_path / "b", 5, proc, run_folder(*START, "steps=30", "sleep_s=0.05"))
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=120) == 143
    again = _start(tmp_path / "b", "--set", "steps=30", "--set", "sleep_s=0.05", "--resume")
    assert again.wait(timeout=120) == 0, again.stderr.read()
    folder = run_folder(*START, "steps=30", "sleep_s=0.05")
    a = json.loads((tmp_path / "a" / folder / "result.json").read_text())["metrics"]["w"]
    b = json.loads((tmp_path / "b" / folder / "result.json").read_text())["metrics"]["w"]
    assert a == b


def test_mnist_cache_write_interrupted_leaves_no_torn_or_stray_file(tmp_path, monkeypatch):
    import numpy as np

    from mlreads.core.data import mnist

    def interrupted(f, **arrays):
        f.write(b"PK\x03\x04 half a zip")
        raise KeyboardInterrupt

    monkeypatch.setattr(np, "savez", interrupted)
    x = np.zeros((4, 784), np.uint8)
    y = np.array([0, 1, 2, 3])
    with pytest.raises(KeyboardInterrupt):
        mnist._write_cache(tmp_path / "mnist.npz", {s: (x, y) for s in mnist.SPLITS})
    assert list(tmp_path.iterdir()) == []

"""Issue 12, classes 2, 3 and 8: checkpoints are input (pointer, safetensors files, state.json validated, pickles
refused unread), a resume must match the checkpoint's config and data, and a full disk keeps the previous checkpoint.
"""

from __future__ import annotations

import errno
import io
import json
import os
import pickle
import shutil
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file
from torch import nn

from mlreads.core.errors import CheckpointError, WriteFailed
from mlreads.core.train import (
    TrainConfig,
    fit,
    latest_checkpoint,
    load_checkpoint,
    make_optimizer,
    param_groups,
)

sys.path.insert(0, str(Path(__file__).parent))
from cli_capture import assert_one_line_exit_2, run_cli


def _train(ckpt_dir: Path, steps=6, width=3, resume=False, **kw):
    torch.manual_seed(0)
    model = nn.Linear(4, width)
    cfg = TrainConfig(steps=steps, lr=0.01, ckpt_every=2, **kw)
    fit(model, cfg, lambda s, g: torch.randn(5, 4, generator=g), lambda m, x: m(x).square().mean(), ckpt_dir=ckpt_dir,
        resume=resume)  # fmt: skip
    return model


def _fresh(width=3):
    torch.manual_seed(1)
    model = nn.Linear(4, width)
    opt = make_optimizer(param_groups(model, 0.0), TrainConfig(lr=0.01))
    return model, opt, torch.Generator()


@pytest.fixture
def ckpt(tmp_path) -> Path:
    """A finished 6-step fit's checkpoint folder: its last checkpoint is step-0000006 (the last step is kept)."""
    _train(tmp_path / "ck")
    return tmp_path / "ck"


class _Evil:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


# --------------------------------------------------------------------------- the `latest` pointer


@pytest.mark.parametrize("content", [b"", b"\xff\xfe\x00\x01", b"../..", b"../../..", b"/etc", b"/tmp",
                                     b"step-0000099", b"step-0000004/../../x", b"x" * 5000, b"step-4"])  # fmt: skip
def test_bad_pointer_is_refused_naming_the_file(ckpt, content):
    (ckpt / "latest").write_bytes(content)
    with pytest.raises(CheckpointError) as err:
        latest_checkpoint(ckpt)
    assert "latest" in str(err.value) and "\n" not in str(err.value)
    with pytest.raises(CheckpointError):
        _train(ckpt, resume=True)


def test_pointer_at_a_file_or_through_a_link_is_refused(ckpt, tmp_path):
    (ckpt / "step-0000005").write_text("not a folder")
    (ckpt / "latest").write_text("step-0000005")
    with pytest.raises(CheckpointError, match="not a folder"):
        latest_checkpoint(ckpt)
    outside = tmp_path / "outside"
    shutil.copytree(ckpt / "step-0000006", outside)
    shutil.rmtree(ckpt / "step-0000005", ignore_errors=True)
    (ckpt / "step-0000005").unlink()
    (ckpt / "step-0000005").symlink_to(outside)  # a checkpoint folder that is a link out of the run folder
    with pytest.raises(CheckpointError):
        latest_checkpoint(ckpt)
    (ckpt / "latest").unlink()
    (ckpt / "latest").symlink_to(tmp_path / "elsewhere")
    with pytest.raises(CheckpointError, match="not a regular file"):
        latest_checkpoint(ckpt)


# --------------------------------------------------------------------------- the files


def _weights(model):
    return {k: v.clone() for k, v in model.state_dict().items()}


def _expect_refused(ckpt, name, match, width=3):
    model, opt, gen = _fresh(width)
    before = _weights(model)
    with pytest.raises(CheckpointError, match=match) as err:
        load_checkpoint(latest_checkpoint(ckpt), model, opt, gen)
    assert name in str(err.value) and "\n" not in str(err.value)
    after = _weights(model)
    assert all(torch.equal(before[k], after[k]) for k in before), "nothing is restored from a refused checkpoint"


@pytest.mark.parametrize("name", ["model.safetensors", "optim.safetensors"])
@pytest.mark.parametrize("damage", ["empty", "truncated", "header", "garbage", "tail", "missing"])
def test_damaged_safetensors_are_refused(ckpt, name, damage):
    f = ckpt / "step-0000006" / name
    raw = f.read_bytes()
    if damage == "missing":
        f.unlink()
    else:
        f.write_bytes({"empty": b"", "truncated": raw[: len(raw) - 7], "header": raw[:8] + b"{nope" + raw[13:],
                       "garbage": os.urandom(len(raw)), "tail": raw + b"extra"}[damage])  # fmt: skip
    _expect_refused(ckpt, name, ".")


def test_a_pickle_in_place_of_safetensors_is_refused_unread(ckpt, tmp_path):
    marker = tmp_path / "marker"
    for name in ("model.safetensors", "optim.safetensors"):
        for payload in (pickle.dumps(_Evil(marker), protocol=2), pickle.dumps(_Evil(marker), protocol=0)):
            (ckpt / "step-0000006" / name).write_bytes(payload)
            _expect_refused(ckpt, name, "pickle|not a safetensors")
        buf = io.BytesIO()
        torch.save({"weight": torch.zeros(3, 4)}, buf)
        (ckpt / "step-0000006" / name).write_bytes(buf.getvalue())
        _expect_refused(ckpt, name, "pickle|not a safetensors")
        _train(ckpt.parent / "again")  # a fresh good checkpoint for the next file
        shutil.rmtree(ckpt)
        shutil.copytree(ckpt.parent / "again", ckpt)
        shutil.rmtree(ckpt.parent / "again")
    assert not marker.exists()


def test_weights_of_another_shape_dtype_or_names_are_refused(ckpt):
    f = ckpt / "step-0000006" / "model.safetensors"
    save_file({"weight": torch.zeros(5, 4), "bias": torch.zeros(5)}, str(f))
    _expect_refused(ckpt, "model.safetensors", "weight")
    save_file({"weight": torch.zeros(3, 4, dtype=torch.float64), "bias": torch.zeros(3)}, str(f))
    _expect_refused(ckpt, "model.safetensors", "F64")
    save_file({"weight": torch.zeros(3, 4), "bias": torch.zeros(3), "extra": torch.zeros(1)}, str(f))
    _expect_refused(ckpt, "model.safetensors", "extra")
    save_file({"weight": torch.zeros(3, 4)}, str(f))
    _expect_refused(ckpt, "model.safetensors", "bias")


def test_optimizer_state_of_another_shape_or_without_rng_is_refused(ckpt):
    from safetensors.torch import load_file

    f = ckpt / "step-0000006" / "optim.safetensors"
    good = load_file(str(f))
    save_file({**good, "state.0.exp_avg": torch.zeros(7, 4)}, str(f))
    _expect_refused(ckpt, "optim.safetensors", "exp_avg")
    save_file({k: v for k, v in good.items() if k != "rng.gen"}, str(f))
    _expect_refused(ckpt, "optim.safetensors", "rng.gen")
    save_file({**good, "state.9.exp_avg": torch.zeros(3)}, str(f))
    _expect_refused(ckpt, "optim.safetensors", "state.9")


@pytest.mark.parametrize("edit", [
    lambda s: s[: len(s) // 2], lambda s: "", lambda s: "[1, 2]", lambda s: "\udcff",
    lambda s: json.dumps({**json.loads(s), "step": "abc"}), lambda s: json.dumps({**json.loads(s), "step": -1}),
    lambda s: json.dumps({**json.loads(s), "step": 10**30}), lambda s: json.dumps({**json.loads(s), "step": 0}),
    lambda s: json.dumps({**json.loads(s), "step": True}), lambda s: json.dumps({**json.loads(s), "step": 4.5}),
    lambda s: json.dumps({k: v for k, v in json.loads(s).items() if k != "param_groups"}),
    lambda s: json.dumps({k: v for k, v in json.loads(s).items() if k != "rng_numpy"}),
    lambda s: json.dumps({**json.loads(s), "rng_python": [3, [1, 2], None]}),
    lambda s: json.dumps({**json.loads(s), "rng_numpy": ["MT19937", [1], 0, 0, 0.0]}),
    lambda s: json.dumps({**json.loads(s), "param_groups": []}),
    lambda s: json.dumps({**json.loads(s), "param_groups": [{"lr": "fast"}]}),
    lambda s: json.dumps({**json.loads(s), "optim_scalars": {"99.step": 1}}),
    lambda s: json.dumps({**json.loads(s), "history": [1, 2]}),
    lambda s: json.dumps({**json.loads(s), "final": [1, 2]}),
    lambda s: "[" * 100000,
])  # fmt: skip
def test_damaged_state_json_is_refused(ckpt, edit):
    f = ckpt / "step-0000006" / "state.json"
    f.write_bytes(edit(f.read_text()).encode("utf-8", "surrogateescape"))
    _expect_refused(ckpt, "state.json", ".")


def test_step_past_the_configured_steps_is_refused(ckpt):
    with pytest.raises(CheckpointError, match="fit.steps: 6 -> 3"):
        _train(ckpt, steps=3, resume=True)
    model, opt, gen = _fresh()
    with pytest.raises(CheckpointError, match="past train.steps=3"):  # no config to match: the step is still checked
        load_checkpoint(latest_checkpoint(ckpt), model, opt, gen, cfg=TrainConfig(steps=3))


# --------------------------------------------------------------------------- through the CLI: one line, exit 2




def test_cli_refuses_a_pointer_out_of_the_run_folder(ckpt_toy, tmp_path):
    argv = ["run", "toytest/ckpt", "--out", str(tmp_path)]
    assert run_cli(argv)[0] == 0
    ck = tmp_path / "toytest/ckpt/smoke-s0/checkpoints/toy"
    secret = tmp_path / "secret"
    shutil.copytree(ck / latest_checkpoint(ck).name, secret)
    for target in ("../../../../secret", str(secret), ""):
        (ck / "latest").write_text(target)
        code, _, err = run_cli(argv + ["--resume"])
        assert_one_line_exit_2(code, err)
        assert "latest" in err


# --------------------------------------------------------------------------- class 3: resume must match


def test_resume_with_other_settings_is_refused_with_a_diff(ckpt_toy, tmp_path):
    argv = ["run", "toytest/ckpt", "--out", str(tmp_path)]
    assert run_cli(argv)[0] == 0
    for extra, shown in [(["--set", "lr=0.02"], "lr: 0.01 -> 0.02"), (["--set", "width=5"], "width: 3 -> 5"),
                         (["--set", "steps=10"], "steps: 8 -> 10"), (["--seed", "0", "--set", "nan_at=99"], "nan_at")]:
        code, _, err = run_cli(argv + ["--resume", *extra])
        assert_one_line_exit_2(code, err)
        assert shown in err and "--resume" in err
    # more steps is a safe change when asked for; fewer than the checkpoint's step never is
    assert run_cli(argv + ["--resume", "--set", "steps=10", "--allow-safe-changes"])[0] == 0
    code, _, err = run_cli(argv + ["--resume", "--set", "steps=3", "--allow-safe-changes"])
    assert_one_line_exit_2(code, err)
    assert "past train.steps=3" in err or "step" in err
    code, _, err = run_cli(argv + ["--resume", "--set", "lr=0.5", "--allow-safe-changes"])
    assert_one_line_exit_2(code, err)


def test_resume_on_other_data_is_refused(ckpt_toy, tmp_path):
    data = tmp_path / "scale.txt"
    data.write_text("1.0")
    argv = ["run", "toytest/ckpt", "--out", str(tmp_path / "runs"), "--set", f"data_path={data}"]
    assert run_cli(argv)[0] == 0
    assert run_cli(argv + ["--resume"])[0] == 0  # the same data resumes
    data.write_text("2.0")  # same path, other content
    code, _, err = run_cli(argv + ["--resume"])
    assert_one_line_exit_2(code, err)
    assert "training data differs" in err


def test_resume_continues_where_the_matching_checkpoint_stopped(ckpt_toy, tmp_path):
    straight = run_cli(["run", "toytest/ckpt", "--out", str(tmp_path / "a")])
    assert straight[0] == 0
    # a run cut at step 6 (checkpoint at 6), then resumed to 8, ends with the same weights
    assert run_cli(["run", "toytest/ckpt", "--out", str(tmp_path / "b"), "--set", "steps=6"])[0] == 0
    assert run_cli(["run", "toytest/ckpt", "--out", str(tmp_path / "b"), "--set", "steps=8", "--resume",
                 "--allow-safe-changes"])[0] == 0  # fmt: skip
    a = json.loads((tmp_path / "a/toytest/ckpt/smoke-s0/result.json").read_text())["metrics"]["w"]
    (b_dir,) = (tmp_path / "b/toytest/ckpt").iterdir()  # --resume continued the steps=6 run in its own folder
    b = json.loads((b_dir / "result.json").read_text())["metrics"]["w"]
    assert len(a) == len(b) == 15 and a != b  # the schedule differs (cosine over 6, then 8 steps), so not equal...
    assert all(abs(x - y) < 0.05 for x, y in zip(a, b))  # ...but the run continued, it did not restart


# --------------------------------------------------------------------------- class 8: disk full


def _enospc(*a, **k):
    raise OSError(errno.ENOSPC, "No space left on device")


def test_disk_full_during_a_checkpoint_keeps_the_previous_one(tmp_path, monkeypatch):
    from mlreads.core.train import checkpoint as st  # every checkpoint file is written by its _write_file

    ck = tmp_path / "ck"
    real = st._write_file
    def flaky(filename, *a, **k):  # the second checkpoint's optimiser file hits a full disk
        if "step-0000004" in str(filename) and "optim" in str(filename):
            _enospc()
        return real(filename, *a, **k)

    monkeypatch.setattr(st, "_write_file", flaky)
    with pytest.raises(WriteFailed) as err:
        _train(ck, steps=8)
    msg = str(err.value)
    assert "No space left" in msg and "step-0000002 is intact" in msg and "\n" not in msg
    assert latest_checkpoint(ck).name == "step-0000002"
    assert sorted(p.name for p in ck.iterdir()) == ["latest", "step-0000002"], "no partial folder is left"
    monkeypatch.setattr(st, "_write_file", real)
    model, opt, gen = _fresh()
    assert load_checkpoint(latest_checkpoint(ck), model, opt, gen)["step"] == 2


@pytest.mark.parametrize("target", ["state", "pointer"])
def test_disk_full_on_state_or_pointer_keeps_the_previous_checkpoint(tmp_path, monkeypatch, target):
    from mlreads.core.train import (
        checkpoint as train,  # the module whose os.fsync the write calls
    )

    ck = tmp_path / "ck"
    real_write_file, real_write_text = train._write_file, Path.write_text
    seen = {"n": 0}

    def second_fails(real, name):
        def f(*a, **k):
            if a[0].name != name:
                return real(*a, **k)
            seen["n"] += 1
            return _enospc() if seen["n"] == 2 else real(*a, **k)
        return f

    if target == "state":  # state.json is written once per checkpoint: the second one fails
        monkeypatch.setattr(train, "_write_file", second_fails(real_write_file, "state.json"))
    else:
        monkeypatch.setattr(Path, "write_text", second_fails(real_write_text, ".latest.tmp"))
    with pytest.raises(WriteFailed, match="step-0000002 is intact"):
        _train(ck, steps=8)
    monkeypatch.setattr(train, "_write_file", real_write_file)
    monkeypatch.setattr(Path, "write_text", real_write_text)
    assert latest_checkpoint(ck).name == "step-0000002"
    assert sorted(p.name for p in ck.iterdir()) == ["latest", "step-0000002"]


def test_disk_full_on_result_json_keeps_the_previous_result(ckpt_toy, tmp_path, monkeypatch):
    from mlreads.core.run import runfolder

    argv = ["run", "toytest/ckpt", "--out", str(tmp_path), "--set", "ckpt_every=0"]
    assert run_cli(argv)[0] == 0
    (folder,) = (tmp_path / "toytest/ckpt").iterdir()
    result = folder / "result.json"
    before = result.read_text()
    monkeypatch.setattr(runfolder.os, "fsync", _enospc)
    code, _, err = run_cli(argv)
    assert_one_line_exit_2(code, err)
    assert "No space left" in err and "previous result.json is unchanged" in err
    assert result.read_text() == before
    assert not list(result.parent.glob("*.tmp"))


def test_disk_full_on_the_metrics_log_is_one_line(ckpt_toy, tmp_path, monkeypatch):
    from mlreads.core.run import runner

    monkeypatch.setattr(runner.RunContext, "log", lambda self, *a, **k: _enospc())
    code, _, err = run_cli(["run", "toytest/ckpt", "--out", str(tmp_path)])
    assert_one_line_exit_2(code, err)
    assert "No space left" in err


def test_an_interrupted_checkpoint_write_leaves_no_partial_folder(tmp_path, monkeypatch):
    from mlreads.core.train import checkpoint as st

    real = st._write_file

    def interrupted(filename, *a, **k):  # Ctrl-C (a second signal) while the second checkpoint's state is written
        if "step-0000004" in str(filename) and filename.name == "state.json":
            raise KeyboardInterrupt
        return real(filename, *a, **k)

    monkeypatch.setattr(st, "_write_file", interrupted)
    with pytest.raises(KeyboardInterrupt):
        _train(tmp_path, steps=8)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["latest", "step-0000002"]


def test_a_full_disk_on_a_checkpoint_blames_neither_the_set_values_nor_prints_a_traceback(ckpt_toy, tmp_path,
                                                                                          monkeypatch):  # fmt: skip
    from mlreads.core.train import checkpoint as st

    monkeypatch.setattr(st, "_write_file", _enospc)
    for sets in ([], ["--set", "width=3"]):
        code, _, err = run_cli(["run", "toytest/ckpt", "--out", str(tmp_path), *sets])
        assert_one_line_exit_2(code, err)
        assert "No space left" in err and "disk full" in err and "--set values" not in err, err
    assert not list(tmp_path.rglob(".step-*")), "no partial checkpoint folder"


@pytest.mark.parametrize("sets", [[], ["--set", "width=3"]])
def test_a_file_size_limit_on_a_real_checkpoint_write_is_one_line(tmp_path, sets):
    """A real limit (RLIMIT_FSIZE) on the real writes: whichever library serializes the checkpoint, the write that
    fails is Python's, so the error is the same one line (EFBIG) and the partial folder goes."""
    import resource
    import subprocess

    limit = 2048  # the optimiser file (the CPU RNG state alone is 5 kB) is over it; the log and the lock are not
    cmd = [sys.executable, str(Path(__file__).parent / "scripts" / "toy_cli.py"), "run", "toytest/ckpt", "--out",
           str(tmp_path), *sets]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MLREADS_PROGRESS": "0",
           "PYTHONPATH": os.pathsep.join([str(Path(__file__).parents[2] / "src"), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120,
                          preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit)))  # fmt: skip
    assert_one_line_exit_2(proc.returncode, proc.stderr)
    assert "File too large" in proc.stderr and "file-size limit" in proc.stderr, proc.stderr
    assert "--set values" not in proc.stderr
    assert not list(tmp_path.rglob(".step-*")), "no partial checkpoint folder"

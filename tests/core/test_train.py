"""fit(): schedule, groups, bit-exact resume after a kill, the non-finite stop, and DDP with 2 processes."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from torch import nn

from mlreads.core.errors import NonFiniteLoss
from mlreads.core.train import (
    TrainConfig,
    fit,
    latest_checkpoint,
    lr_factor,
    param_groups,
    recipe,
)

SCRIPT = Path(__file__).parent / "scripts" / "train_tiny.py"


def _env():
    return {**os.environ, "OMP_NUM_THREADS": "1", "MLREADS_PROGRESS": "0"}


def _run(out, *extra, wait=True):
    cmd = [sys.executable, str(SCRIPT), str(out), *extra]
    if wait:
        subprocess.run(cmd, check=True, env=_env(), timeout=120)
        return None
    return subprocess.Popen(cmd, env=_env())


def test_schedule_warmup_then_cosine_to_floor():
    cfg = TrainConfig(steps=100, lr=1.0, min_lr=0.1, warmup=10)
    assert lr_factor(0, cfg) == pytest.approx(0.1)
    assert lr_factor(9, cfg) == pytest.approx(1.0)
    assert lr_factor(10, cfg) == pytest.approx(1.0)
    assert lr_factor(55, cfg) == pytest.approx(0.55)
    assert lr_factor(100, cfg) == pytest.approx(0.1)
    factors = [lr_factor(s, cfg) for s in range(10, 101)]
    assert all(a >= b for a, b in zip(factors, factors[1:]))


def test_param_groups_split_decay_and_keep_per_group_lr():
    model = nn.Sequential(nn.Linear(3, 4), nn.LayerNorm(4))
    groups = param_groups(model, 0.1)
    assert [len(g["params"]) for g in groups] == [1, 3] and [g["weight_decay"] for g in groups] == [0.1, 0.0]
    # Per-group learning rates follow the schedule by the same factor.
    seen = []
    fast, slow = model[0].parameters(), model[1].parameters()
    cfg = TrainConfig(steps=4, lr=1e-2, warmup=2, schedule="constant", grad_clip=None)
    fit(model, cfg, lambda s, g: torch.randn(2, 3, generator=g),
        lambda m, x: (seen.append(None), m(x).pow(2).mean())[1],
        groups=[{"params": list(fast), "lr": 1e-2}, {"params": list(slow), "lr": 1e-4}],
        eval_fn=lambda m: {"x": 0.0})
    assert len(seen) == 4


def test_param_groups_exempt_and_own_lr_groups():
    model = nn.Sequential(nn.Linear(3, 4), nn.Linear(4, 2))
    groups = param_groups(model, 0.1, no_decay=lambda n, p: n == "0.weight", own_lr=lambda n, p: n.startswith("1."),
                          lr=1e-4)
    by_id = {id(p): n for n, p in model.named_parameters()}
    names = [sorted(by_id[id(p)] for p in g["params"]) for g in groups]
    # nothing decays but... the only matrix left to decay is exempt, so the decay group is dropped
    assert names == [["0.bias", "0.weight"], ["1.bias", "1.weight"]]
    assert [g["weight_decay"] for g in groups] == [0.0, 0.0] and groups[1]["lr"] == 1e-4
    with pytest.raises(ValueError, match="own_lr needs lr"):
        param_groups(model, 0.1, own_lr=lambda n, p: True)


def test_recipe_sets_the_cosine_floor_as_a_fraction_of_lr():
    cfg = recipe(100, 2e-3, warmup=10, min_lr_frac=0.1, weight_decay=0.1, eval_every=20)
    assert (cfg.steps, cfg.lr, cfg.min_lr, cfg.warmup, cfg.weight_decay, cfg.eval_every) == (100, 2e-3, 2e-4, 10, 0.1,
                                                                                              20)


def _batches_seen(data_seed=None, ctx=None, disturb=False):
    seen = []
    model = nn.Linear(3, 1)

    def batch_fn(step, gen):
        if disturb:  # draws from the global RNG between steps must not change the batches
            torch.rand(7)
        x = torch.randn(2, 3, generator=gen)
        seen.append(x)
        return x

    fit(model, TrainConfig(steps=5, lr=1e-2), batch_fn, lambda m, x: m(x).square().mean(), ctx=ctx,
        data_seed=data_seed)
    return torch.stack(seen)


def test_fit_draws_data_from_its_seed_never_from_the_global_rng(tmp_path):
    from mlreads.core.run.runner import RunContext

    torch.manual_seed(1)
    a = _batches_seen(data_seed=7)
    torch.manual_seed(2)
    b = _batches_seen(data_seed=7, disturb=True)
    assert torch.equal(a, b)
    assert not torch.equal(a, _batches_seen(data_seed=8))
    # Inside a run, two models see the same batches by default, and another run seed changes them.
    ctx0 = RunContext(tmp_path / "s0", "smoke", 0, 1)
    first, second = _batches_seen(ctx=ctx0), _batches_seen(ctx=ctx0, disturb=True)
    assert torch.equal(first, second)
    assert torch.equal(first, _batches_seen(data_seed=ctx0.seed_for("data")))
    assert not torch.equal(first, _batches_seen(ctx=RunContext(tmp_path / "s1", "smoke", 1, 1)))


def test_training_reduces_loss():
    torch.manual_seed(0)
    model = nn.Linear(5, 1)
    w = torch.randn(5, 1)
    result = fit(model, TrainConfig(steps=200, lr=0.05, log_every=50),
                 lambda s, g: (x := torch.randn(32, 5, generator=g), x @ w),
                 lambda m, b: ((m(b[0]) - b[1]) ** 2).mean())
    losses = [r["loss"] for r in result.history]
    assert losses[-1] < 0.05 * losses[0]


def test_kill_and_resume_is_bit_exact(tmp_path):
    _run(tmp_path / "straight")
    proc = _run(tmp_path / "killed", "--sleep", "0.05", wait=False)
    ckpts, log = tmp_path / "killed" / "checkpoints", tmp_path / "killed" / "metrics.jsonl"
    deadline = time.time() + 60
    while time.time() < deadline:  # kill 2 steps past a checkpoint (every 5): rows the resume will redo exist
        latest = latest_checkpoint(ckpts)
        at = int(latest.name.split("-")[1]) if latest is not None else 0
        if at >= 20 and log.exists() and len(log.read_text().splitlines()) >= at + 2:
            break
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    stopped_at = int(latest_checkpoint(ckpts).name.split("-")[1])
    assert 20 <= stopped_at < 60, "the run must be killed mid-training"
    logged = (tmp_path / "killed" / "metrics.jsonl").read_text().splitlines()
    assert len(logged) > stopped_at, "the kill must come after rows past the checkpoint were logged"
    assert not (tmp_path / "killed" / "final.safetensors").exists()
    _run(tmp_path / "killed", "--resume")
    a = load_file(tmp_path / "straight" / "final.safetensors")
    b = load_file(tmp_path / "killed" / "final.safetensors")
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k
    # metrics.jsonl: every step once, and the same losses as the uninterrupted run
    rows = {name: [json.loads(x) for x in (tmp_path / name / "metrics.jsonl").read_text().splitlines()]
            for name in ("straight", "killed")}
    assert [r["step"] for r in rows["killed"]] == list(range(1, 61))
    assert [r["loss"] for r in rows["killed"]] == [r["loss"] for r in rows["straight"]]


def test_resume_without_checkpoint_starts_fresh(tmp_path):
    _run(tmp_path / "a", "--steps", "10")
    _run(tmp_path / "b", "--steps", "10", "--resume")
    a, b = load_file(tmp_path / "a" / "final.safetensors"), load_file(tmp_path / "b" / "final.safetensors")
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_non_finite_loss_stops_and_keeps_last_good_checkpoint(tmp_path):
    torch.manual_seed(0)
    model = nn.Linear(3, 1)

    def loss_fn(m, x):
        loss = m(x).pow(2).mean()
        return loss * float("nan") if loss_fn.calls == 13 else (setattr(loss_fn, "calls", loss_fn.calls + 1), loss)[1]

    loss_fn.calls = 0
    cfg = TrainConfig(steps=50, lr=1e-2, ckpt_every=5)
    with pytest.raises(NonFiniteLoss, match="step 13.*last good checkpoint kept"):
        fit(model, cfg, lambda s, g: torch.randn(4, 3, generator=g), loss_fn, ckpt_dir=tmp_path)
    latest = latest_checkpoint(tmp_path)
    assert latest.name == "step-0000010"
    weights = load_file(latest / "model.safetensors")
    assert all(torch.isfinite(v).all() for v in weights.values())
    assert not list(tmp_path.glob(".*.tmp")), "no half-written checkpoint is left behind"


def test_checkpoint_files_load_without_pickle(tmp_path):
    _run(tmp_path, "--steps", "12")
    latest = latest_checkpoint(tmp_path / "checkpoints")
    assert sorted(p.name for p in latest.iterdir()) == ["model.safetensors", "optim.safetensors", "state.json"]
    assert "rng.torch" in load_file(latest / "optim.safetensors")


def test_ddp_two_processes_match_single_process(tmp_path):
    env = {**_env(), "MASTER_ADDR": "127.0.0.1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
           str(SCRIPT), str(tmp_path / "ddp"), "--dropout", "0", "--steps", "30"]
    subprocess.run(cmd, check=True, env=env, timeout=180, capture_output=True)
    _run(tmp_path / "single", "--dropout", "0", "--steps", "30")
    r0 = load_file(tmp_path / "ddp" / "final-rank0.safetensors")
    r1 = load_file(tmp_path / "ddp" / "final-rank1.safetensors")
    single = load_file(tmp_path / "single" / "final.safetensors")
    for k in r0:
        assert torch.equal(r0[k], r1[k]), f"ranks diverged on {k}"
        torch.testing.assert_close(r0[k], single[k], rtol=1e-5, atol=1e-6)
    # And training really moved the weights (the comparison is not between two untouched inits).
    torch.manual_seed(0)
    init = nn.Sequential(nn.Linear(8, 32), nn.Dropout(0), nn.GELU(), nn.Linear(32, 1)).state_dict()
    assert not torch.allclose(init["0.weight"], single["0.weight"])


def test_each_model_of_an_experiment_resumes_from_its_own_checkpoints(tmp_path):
    from mlreads.core.run.runner import RunContext

    def train(width, desc, resume):
        torch.manual_seed(0)
        model = nn.Linear(3, width)
        cfg = TrainConfig(steps=6, lr=0.01, ckpt_every=2)
        ctx = RunContext(tmp_path, "smoke", 0, 1, resume=resume)
        fit(model, cfg, lambda s, g: torch.randn(4, 3, generator=g), lambda m, b: m(b).square().mean(), ctx=ctx,
            desc=desc)
        return model

    train(2, "first/model", resume=False)
    train(5, "second model", resume=False)
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == ["first-model", "second-model"]
    # resuming the second model must not load the first one's weights (shape (2, 3) would not even fit)
    train(5, "second model", resume=True)


def test_a_finished_fit_checkpoints_its_last_step_and_resumes_without_training_again(tmp_path):
    """The last step is checkpointed even off the cadence (7 steps, every 3): a resumed experiment reads a model it
    already finished back, with its final evaluation, instead of training its last steps again."""
    drawn, evals = [], []

    def batch_fn(step, gen):
        drawn.append(step)
        return torch.randn(4, 3, generator=gen)

    def eval_fn(m):
        evals.append(1)
        return {"w": float(m.weight.sum())}

    def train(resume):
        torch.manual_seed(0)
        model = nn.Linear(3, 2)
        res = fit(model, TrainConfig(steps=7, lr=0.01, ckpt_every=3, log_every=1), batch_fn,
                  lambda m, b: m(b).square().mean(), eval_fn, ckpt_dir=tmp_path, resume=resume)
        return model, res

    first, res1 = train(resume=False)
    assert latest_checkpoint(tmp_path).name == "step-0000007"
    drawn.clear(), evals.clear()
    again, res2 = train(resume=True)
    assert drawn == [0], drawn  # the data fingerprint's one draw, and no training step
    assert evals == [] and res2.final == res1.final, "the final evaluation is read back, not run again"
    assert all(torch.equal(a, b) for a, b in zip(first.state_dict().values(), again.state_dict().values()))
    assert res2.steps == 7 and [r["step"] for r in res2.history] == [r["step"] for r in res1.history]


def test_a_fit_with_after_step_keeps_no_last_step_checkpoint(tmp_path):
    """`after_step` may gather what a checkpoint does not hold (Sophia's pilot win rates): a model read back at its
    last step would come without it, so such a fit replays its last steps on resume instead."""
    seen = []

    def train(resume):
        torch.manual_seed(0)
        fit(nn.Linear(3, 2), TrainConfig(steps=7, lr=0.01, ckpt_every=3), lambda s, g: torch.randn(4, 3, generator=g),
            lambda m, b: m(b).square().mean(), ckpt_dir=tmp_path, resume=resume,
            after_step=lambda done, *_: seen.append(done))  # fmt: skip

    train(resume=False)
    assert latest_checkpoint(tmp_path).name == "step-0000006"
    seen.clear()
    train(resume=True)
    assert seen == [7], "the step after the last cadence checkpoint runs again, with its after_step"


def test_logged_lr_is_the_schedule_on_the_configured_lr_whatever_the_groups():
    model = nn.Sequential(nn.Linear(3, 3), nn.Linear(3, 1))
    cfg = TrainConfig(steps=12, lr=1e-2, min_lr=1e-3, warmup=3, log_every=1)
    groups = [{"params": list(model[0].parameters()), "lr": 1e-4}, {"params": list(model[1].parameters())}]
    res = fit(model, cfg, lambda s, g: torch.randn(4, 3, generator=g), lambda m, b: m(b).square().mean(),
              groups=groups)
    assert [r["lr"] for r in res.history] == pytest.approx([1e-2 * lr_factor(s, cfg) for s in range(12)])


def test_cpu_clock_limits_by_process_time_not_by_waiting():
    import time as _time

    model = nn.Linear(3, 1)

    def batch_fn(step, gen):
        _time.sleep(0.05)  # waiting: wall time passes, CPU time hardly does
        return torch.randn(4, 3, generator=gen)

    loss = lambda m, b: m(b).square().mean()  # noqa: E731
    wall = fit(model, TrainConfig(steps=50, lr=1e-3, time_limit_s=0.2, log_every=1), batch_fn, loss)
    cpu = fit(model, TrainConfig(steps=50, lr=1e-3, time_limit_s=0.2, log_every=1, clock="cpu"), batch_fn, loss)
    assert wall.stopped_early and wall.steps <= 6
    assert not cpu.stopped_early and cpu.steps == 50  # 2.5 s of sleeping is far less than 0.2 s of CPU
    assert cpu.history[-1]["elapsed_s"] < 1.0


def test_rsqrt_schedule_is_lr_over_sqrt_t_without_warmup_and_eq3_with_it():
    cfg = TrainConfig(steps=100, lr=1.0, warmup=0, schedule="rsqrt")  # Adam Section 6.1: alpha / sqrt(t)
    assert [lr_factor(s, cfg) for s in (0, 3, 15)] == pytest.approx([1.0, 0.5, 0.25])
    cfg = TrainConfig(steps=100, lr=1.0, warmup=4, schedule="rsqrt")  # warmup to the peak at t = 4, then sqrt(4/t)
    assert [lr_factor(s, cfg) for s in (0, 1, 3, 15)] == pytest.approx([0.25, 0.5, 1.0, 0.5])


def test_optimizer_factory_and_after_step_hook():
    """fit builds the optimiser with the factory (groups carry the configured lr) and calls after_step after each
    step with the number of steps taken and the batch just used."""
    torch.manual_seed(0)
    model = nn.Linear(3, 1)
    built, calls = [], []

    def factory(groups):
        built.append([g["lr"] for g in groups])
        return torch.optim.Adagrad(groups)

    def after_step(done, m, opt, batch):
        assert isinstance(opt, torch.optim.Adagrad) and m is model
        calls.append((done, batch.shape))
        with torch.no_grad():
            m.weight.clamp_(-0.01, 0.01)  # a projection, as max-norm does

    cfg = TrainConfig(steps=5, lr=0.5, schedule="constant", grad_clip=None)
    fit(model, cfg, lambda s, g: torch.randn(4, 3, generator=g), lambda m, x: (m(x) - 10).pow(2).mean(),
        optimizer=factory, after_step=after_step)
    assert built == [[0.5, 0.5]]
    assert calls == [(i, torch.Size([4, 3])) for i in range(1, 6)]
    assert model.weight.abs().max() <= 0.01  # the hook's projection ran after the last step

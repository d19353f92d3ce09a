"""`fit()`: the one training loop every paper uses.

It owns what every experiment needs and none should rewrite: optimiser parameter groups (decay / no decay, per-group
learning rates), linear warmup + cosine schedule, gradient clipping, evaluation at a cadence, a progress bar, atomic
checkpoints with bit-exact resume on CPU, a clear stop on a non-finite loss, and DDP under `torchrun`.

Determinism contract: `batch_fn(step, gen)` draws randomness only from `gen`, a generator that `fit` seeds with
`data_seed` (by default the run's seed derived for "data", so every model an experiment trains sees the same batches)
and checkpoints. With the global torch RNG (dropout) and the optimiser state also saved, a resumed run on CPU produces
the same weights, bit for bit, as an uninterrupted one.

Checkpoint layout (rank 0 writes; each checkpoint is a folder renamed into place, then `latest` is replaced):

    checkpoints/latest                  the name of the newest complete checkpoint folder
    checkpoints/step-0000400/model.safetensors   the weights
    checkpoints/step-0000400/optim.safetensors   optimiser tensors and RNG states
    checkpoints/step-0000400/state.json          step, optimiser hyper-parameters, RNG seeds, history

Inside an experiment run (`ctx` given, no explicit `ckpt_dir`) each `fit` call checkpoints under
`checkpoints/<desc>/`, so an experiment that trains several models resumes each from its own checkpoints.
Nothing is ever loaded through pickle.
"""

from __future__ import annotations

import json
import math
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor, nn

from mlreads.core.errors import Interrupted, NonFiniteLoss
from mlreads.core.run import signals
from mlreads.core.run.config import to_dict
from mlreads.core.run.progress import bar as progress_bar
from mlreads.core.train.checkpoint import (
    _pointer_name,
    data_fingerprint,
    latest_checkpoint,
    load_checkpoint,
    save_checkpoint,
)
from mlreads.core.train.config import Phase, TrainConfig, TrainResult
from mlreads.core.train.distributed import Dist, global_loss, init_distributed, shard
from mlreads.core.train.optim import OptimizerFactory, make_optimizer, param_groups
from mlreads.core.train.schedule import lr_factor

if TYPE_CHECKING:
    from mlreads.core.run.runner import RunContext


def fit(
    model: nn.Module,
    cfg: TrainConfig,
    batch_fn: Callable[[int, torch.Generator], Any],
    loss_fn: Callable[[nn.Module, Any], Tensor] | Sequence[Phase],
    eval_fn: Callable[[nn.Module], dict[str, float]] | None = None,
    ctx: RunContext | None = None,
    groups: list[dict] | None = None,
    ckpt_dir: str | Path | None = None,
    resume: bool | None = None,
    desc: str = "train",
    data_seed: int | None = None,
    optimizer: OptimizerFactory | None = None,
    after_step: Callable[[int, nn.Module, torch.optim.Optimizer, Any], None] | None = None,
) -> TrainResult:
    """Train `model` for `cfg.steps` optimiser steps and return its history. See the module docstring.

    `loss_fn` is one loss, or a sequence of `Phase`s taken in order at every step (alternating updates of parts of
    the model, such as a GAN's k discriminator steps then one generator step); the logged "loss" is the last
    phase's, and each phase's mean is logged as `loss_<name>`.
    `groups`: optimiser parameter groups (default `param_groups(model, cfg.weight_decay)`). `data_seed`: the seed of
    the generator `batch_fn` draws from (default: `ctx.seed_for("data")`, or 0 without a context). `optimizer`: a
    factory `groups -> Optimizer` that replaces `cfg.optimizer` (see `make_optimizer`). `after_step(done, model, opt,
    batch)` runs after each optimiser step (`done` steps taken): a max-norm projection, Sophia's Hessian refresh.
    """
    d = init_distributed()
    if ckpt_dir is None and ctx is not None:  # one folder per model of the experiment, named by `desc`
        ckpt_dir = ctx.ckpt_dir / re.sub(r"[^A-Za-z0-9_.-]+", "-", desc)
    ckpt_dir = Path(ckpt_dir) if ckpt_dir is not None else None
    resume = resume if resume is not None else bool(ctx is not None and ctx.resume)
    opt = make_optimizer(groups or param_groups(model, cfg.weight_decay), cfg, optimizer)
    if data_seed is None:
        data_seed = ctx.seed_for("data") if ctx is not None else 0
    gen = torch.Generator().manual_seed(data_seed)
    train_model = model
    if d.world > 1:
        train_model = nn.parallel.DistributedDataParallel(model)

    result = TrainResult()
    start_step, elapsed0 = 0, 0.0
    window: list[float] = []  # the losses of the steps since the last logged row
    saved_phases: dict = {}
    meta = _run_meta(cfg, ctx, batch_fn, data_seed) if ckpt_dir is not None and (cfg.ckpt_every or resume) else None
    if resume and ckpt_dir is not None and (path := latest_checkpoint(ckpt_dir)) is not None:
        state = load_checkpoint(path, model, opt, gen, cfg=cfg, meta=meta,
                                allow_safe=bool(getattr(ctx, "allow_safe_changes", False)))  # fmt: skip
        start_step, result.history = state["step"], state["history"]
        window, saved_phases = list(state.get("log_window", [])), state.get("phase_window", {})
        if start_step == cfg.steps:  # a finished fit read back: its final evaluation, not a second one
            result.final = dict(state.get("final") or {})
        elapsed0 = float(state.get("elapsed_s", 0.0))
        if ctx is not None and d.main:
            # rows logged before the checkpoint stay; the ones after it are logged again below
            lacking = ctx.continue_log(state.get("log_rows"), result.history[-1] if result.history else None)
            ctx.resumed(desc, start_step, cfg.steps)  # "resuming from step N"
            if lacking:
                ctx.notice(f"{desc}: metrics.jsonl lacks {lacking} rows logged before the checkpoint")
    elif resume and ctx is not None and d.main:
        ctx.resumed(desc, None)  # "--resume: no checkpoint ...; starting from step 0"

    phases = list(loss_fn) if isinstance(loss_fn, Sequence) else [Phase("loss", loss_fn)]
    owned_sets = [None if ph.params is None else {id(p) for p in ph.params(model)} for ph in phases]
    phase_window: dict[str, list[float]] = ({ph.name: list(saved_phases.get(ph.name, [])) for ph in phases}
                                            if len(phases) > 1 else {})  # fmt: skip
    bar = progress_bar(total=cfg.steps, initial=start_step, desc=desc, enabled=d.main)
    clock = time.process_time if cfg.clock == "cpu" else time.perf_counter
    t0 = clock()

    def now() -> float:  # training time so far, the interrupted runs' included
        return elapsed0 + clock() - t0

    resumable = _Resumable(model, opt, gen, result, meta, window, phase_window, now, ctx if d.main else None)
    done = start_step  # optimiser steps taken so far
    for step in signals.steps(range(start_step, cfg.steps), d.world):  # a signal now stops at the step boundary
        factor = lr_factor(step, cfg)
        for g in opt.param_groups:
            g["lr"] = g["base_lr"] * factor
        model.train()
        for phase, owned in zip(phases, owned_sets):
            for _ in range(phase.repeats):
                batch = shard(batch_fn(step, gen), d)
                loss = phase.loss_fn(train_model, batch)
                value = global_loss(loss, d)  # what is logged: the global batch's loss, the same on every rank
                if not math.isfinite(value):
                    last = _pointer_name(ckpt_dir) if ckpt_dir is not None else None
                    kept = (f"last good checkpoint kept at {ckpt_dir / last}" if last
                            else "no checkpoint was written (set ckpt_every)")  # fmt: skip
                    raise NonFiniteLoss(f"loss became {value} at step {step}; training stopped, {kept}")
                opt.zero_grad(set_to_none=True)
                loss.backward()
                if owned is not None:  # only this phase's parameters move: the others' gradients are dropped
                    for p in model.parameters():
                        if id(p) not in owned:
                            p.grad = None
                if cfg.grad_clip:
                    nn.utils.clip_grad_norm_([p for p in model.parameters() if p.grad is not None], cfg.grad_clip)
                opt.step()
            if len(phases) > 1:
                phase_window[phase.name].append(value)

        done = step + 1
        if after_step is not None:
            after_step(done, model, opt, batch)
        window.append(value)
        row: dict[str, Any] = {}
        if done % cfg.log_every == 0 or done == cfg.steps:
            # the schedule on the configured lr (groups with their own lr follow the same factor)
            row = {"step": done, "loss": sum(window) / len(window), "lr": cfg.lr * factor,
                   "elapsed_s": round(now(), 3)}  # fmt: skip
            window.clear()
            for name, values in phase_window.items():
                row[f"loss_{name}"] = sum(values) / len(values)
                values.clear()
        out_of_time = cfg.time_limit_s is not None and now() > cfg.time_limit_s
        if eval_fn is not None and ((cfg.eval_every and done % cfg.eval_every == 0) or done == cfg.steps or out_of_time):
            metrics = evaluate(model, eval_fn)
            row = {"step": done, **row, **metrics}
            result.final = metrics
            bar.set_postfix({k: f"{v:.4g}" for k, v in metrics.items() if isinstance(v, float)}, refresh=False)
        if row:
            result.history.append(row)
            if ctx is not None and d.main:
                ctx.log(**row, fit=desc)  # the label says which model a row is of, when a run trains several
        # on the cadence, and at the last step: a resumed experiment that trains several models, or works after
        # training (ctx.stage), reads a finished model back instead of training its last cadence again. Not at the
        # last step with an `after_step`: it may gather what no checkpoint holds (Sophia's pilot win rates), which a
        # model read back would lack; such a fit replays its last steps on resume, as it always did.
        last = done == cfg.steps and after_step is None
        if cfg.ckpt_every and (done % cfg.ckpt_every == 0 or last) and d.main and ckpt_dir is not None:
            if not all(torch.isfinite(p).all() for p in model.parameters()):
                raise NonFiniteLoss(f"parameters became non-finite at step {done}; last good checkpoint kept")
            resumable.save(ckpt_dir, done)
        bar.set_description(f"{desc} loss {window[-1] if window else row.get('loss', 0):.4f}", refresh=False)
        bar.update(1)
        if (sig := _stop_signal(d)) is not None:
            bar.close()
            raise _interrupt(sig, done, cfg, d, ckpt_dir, resumable)
        if out_of_time:
            result.stopped_early = True
            break
    bar.close()
    result.steps = done
    result.elapsed_s = now()
    if eval_fn is not None and not result.final:
        result.final = evaluate(model, eval_fn)
    return result


def _run_meta(cfg: TrainConfig, ctx: RunContext | None, batch_fn, data_seed: int) -> dict:
    """What a checkpoint must match on resume: the run's resolved config, this fit's TrainConfig, and the data."""
    config = {"fit": to_dict(cfg)}
    if ctx is not None and getattr(ctx, "config", None) is not None:
        config["run"] = ctx.config
    return json.loads(json.dumps({"config": config, "data": data_fingerprint(batch_fn, data_seed)}, default=str))


def _stop_signal(d: Dist) -> int | None:
    """The signal that asked to stop (SIGINT/SIGTERM), agreed by every rank, or None."""
    sig = signals.requested()
    if d.world > 1:
        import torch.distributed as dist

        flag = torch.tensor(float(sig or 0))
        dist.all_reduce(flag, op=dist.ReduceOp.MAX)
        sig = int(flag.item()) or None
    return sig


@dataclass
class _Resumable:
    """What a checkpoint holds to continue exactly: the weights, optimiser and data generator, the history, and the
    log's state (the losses since the last row, the training time so far, the log's row count)."""

    model: nn.Module
    opt: torch.optim.Optimizer
    gen: torch.Generator
    result: TrainResult  # its history, and its final evaluation (kept at the last step)
    meta: dict | None
    window: list[float]
    phase_window: dict[str, list[float]]
    now: Callable[[], float]
    ctx: RunContext | None

    def save(self, ckpt_dir: Path, step: int) -> Path:
        if self.ctx is not None:
            self.ctx.flush_log()  # the rows the checkpoint counts are on disk first
        extra = {"log_window": list(self.window), "phase_window": {k: list(v) for k, v in self.phase_window.items()},
                 "elapsed_s": round(self.now(), 6), "log_rows": self.ctx.log_rows if self.ctx is not None else None,
                 "final": self.result.final}  # fmt: skip
        path = save_checkpoint(ckpt_dir, step, self.model, self.opt, self.gen, self.result.history, self.meta, extra)
        if self.ctx is not None and hasattr(self.ctx, "checkpointed"):
            self.ctx.checkpointed()  # the run's sitting is on record up to this checkpoint
        return path


def _interrupt(sig: int, done: int, cfg: TrainConfig, d: Dist, ckpt_dir: Path | None, state: _Resumable
               ) -> Interrupted:  # fmt: skip
    """Write a final checkpoint (where the run checkpoints) and return the Interrupted to raise."""
    path = None
    if cfg.ckpt_every and ckpt_dir is not None:
        if d.main:
            last = _pointer_name(ckpt_dir)
            path = ckpt_dir / last if last == f"step-{done:07d}" else state.save(ckpt_dir, done)
        else:
            path = ckpt_dir / f"step-{done:07d}"
    return Interrupted(sig, done, path)


@torch.no_grad()
def evaluate(model: nn.Module, eval_fn: Callable[[nn.Module], dict[str, float]]) -> dict[str, float]:
    """Run `eval_fn` in eval mode without gradients, then restore train mode."""
    was_training = model.training
    model.eval()
    try:
        return {k: float(v) if isinstance(v, int | float | Tensor) else v for k, v in eval_fn(model).items()}
    finally:
        model.train(was_training)

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
import os
import random
import re
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import torch
from torch import Tensor, nn

from mlreads.core.errors import NonFiniteLoss
from mlreads.core.progress import bar as progress_bar

if TYPE_CHECKING:
    from mlreads.core.runner import RunContext


@dataclass(frozen=True)
class TrainConfig:
    steps: int = 1000
    lr: float = 1e-3  # peak learning rate of groups that do not set their own
    min_lr: float = 0.0  # cosine floor, as a fraction of each group's lr is min_lr / lr
    warmup: int = 0  # steps of linear warmup
    schedule: Literal["cosine", "constant", "inv_sqrt"] = "cosine"  # inv_sqrt: lr / sqrt(t) (Adam Section 6.1)
    weight_decay: float = 0.0
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-8
    grad_clip: float | None = 1.0  # max global grad norm; None turns clipping off
    optimizer: Literal["adamw", "adam", "sgd"] = "adamw"
    eval_every: int = 0  # 0: evaluate only at the end
    ckpt_every: int = 0  # 0: no checkpoints
    log_every: int = 10
    time_limit_s: float | None = None  # stop early after this many seconds (breaks bit-exact resume)


@dataclass
class TrainResult:
    history: list[dict] = field(default_factory=list)
    final: dict = field(default_factory=dict)
    steps: int = 0
    elapsed_s: float = 0.0
    stopped_early: bool = False

    def series(self, key: str) -> tuple[list[int], list[float]]:
        """(steps, values) of one logged quantity, e.g. result.series("val_loss")."""
        rows = [r for r in self.history if key in r]
        return [r["step"] for r in rows], [r[key] for r in rows]


def lr_factor(step: int, cfg: TrainConfig) -> float:
    """The schedule's multiplier at `step` (0-based): linear warmup, then cosine to min_lr / lr."""
    if cfg.warmup and step < cfg.warmup:
        return (step + 1) / cfg.warmup
    if cfg.schedule == "constant":
        return 1.0
    if cfg.schedule == "inv_sqrt":  # alpha_t = alpha / sqrt(t), t counted from 1 after warmup
        return 1.0 / math.sqrt(step - cfg.warmup + 1)
    floor = cfg.min_lr / cfg.lr if cfg.lr else 0.0
    progress = min(1.0, (step - cfg.warmup) / max(1, cfg.steps - cfg.warmup))
    return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * progress))


def param_groups(
    model: nn.Module,
    weight_decay: float,
    no_decay: Callable[[str, nn.Parameter], bool] | None = None,
    own_lr: Callable[[str, nn.Parameter], bool] | None = None,
    lr: float | None = None,
) -> list[dict]:
    """Optimiser parameter groups: weight decay on matrices (ndim >= 2), none on biases, norms and other vectors.

    `no_decay(name, p)` exempts more parameters from decay (Mamba's A_log). `own_lr(name, p)` moves parameters into
    a group of their own at learning rate `lr` with no decay (S4's state-space parameters). Empty groups are dropped.
    """
    decay, rest, special = [], [], []
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        if own_lr is not None and own_lr(name, p):
            special.append(p)
        elif p.ndim >= 2 and not (no_decay is not None and no_decay(name, p)):
            decay.append(p)
        else:
            rest.append(p)
    groups = [{"params": decay, "weight_decay": weight_decay}, {"params": rest, "weight_decay": 0.0}]
    if special:
        if lr is None:
            raise ValueError("param_groups: own_lr needs lr, the learning rate of that group")
        groups.append({"params": special, "weight_decay": 0.0, "lr": lr})
    return [g for g in groups if g["params"]]


def recipe(
    steps: int,
    lr: float,
    *,
    warmup: int = 0,
    min_lr_frac: float = 0.1,
    weight_decay: float = 0.0,
    betas: tuple[float, float] = (0.9, 0.999),
    grad_clip: float | None = 1.0,
    schedule: Literal["cosine", "constant", "inv_sqrt"] = "cosine",
    optimizer: Literal["adamw", "adam", "sgd"] = "adamw",
    eval_every: int = 0,
    log_every: int = 10,
    ckpt_every: int = 0,
) -> TrainConfig:
    """The usual recipe in one call: `optimizer` at peak `lr`, linear warmup, cosine to `min_lr_frac * lr`."""
    return TrainConfig(steps=steps, lr=lr, min_lr=lr * min_lr_frac, warmup=warmup, schedule=schedule,
                       weight_decay=weight_decay, betas=betas, grad_clip=grad_clip, optimizer=optimizer,
                       eval_every=eval_every, log_every=log_every, ckpt_every=ckpt_every)  # fmt: skip


OptimizerFactory = Callable[[list[dict]], torch.optim.Optimizer]


def make_optimizer(
    groups: list[dict], cfg: TrainConfig, factory: OptimizerFactory | None = None
) -> torch.optim.Optimizer:
    """`cfg.optimizer` over `groups`, or `factory(groups)` when given: any torch.optim.Optimizer (the project's own
    Adam or SophiaG, torch's Adagrad); each group arrives with its lr and weight_decay filled in from `cfg`."""
    groups = [{"lr": cfg.lr, "weight_decay": cfg.weight_decay, **g} for g in groups]
    for g in groups:
        g["base_lr"] = g["lr"]
    if factory is not None:
        return factory(groups)
    if cfg.optimizer == "adamw":
        return torch.optim.AdamW(groups, lr=cfg.lr, betas=cfg.betas, eps=cfg.eps)
    if cfg.optimizer == "adam":
        return torch.optim.Adam(groups, lr=cfg.lr, betas=cfg.betas, eps=cfg.eps)
    return torch.optim.SGD(groups, lr=cfg.lr, momentum=cfg.betas[0])


# ---------------------------------------------------------------------------------------------- distributed


@dataclass(frozen=True)
class Dist:
    rank: int = 0
    world: int = 1

    @property
    def main(self) -> bool:
        return self.rank == 0


def init_distributed() -> Dist:
    """Join the process group that `torchrun` describes (gloo on CPU, nccl on GPU); a no-op for one process."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world == 1:
        return Dist()
    import torch.distributed as dist

    if not dist.is_initialized():
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    return Dist(dist.get_rank(), dist.get_world_size())


def shard(batch: Any, d: Dist) -> Any:
    """This rank's slice (along dim 0) of the global batch."""
    if d.world == 1:
        return batch
    if isinstance(batch, Tensor):
        if batch.shape[0] % d.world:
            raise ValueError(f"global batch {batch.shape[0]} is not divisible by world size {d.world}")
        return batch.tensor_split(d.world)[d.rank]
    if isinstance(batch, tuple | list):
        return type(batch)(shard(b, d) for b in batch)
    if isinstance(batch, dict):
        return {k: shard(v, d) for k, v in batch.items()}
    return batch


def _all_finite(loss: Tensor, d: Dist) -> bool:
    ok = torch.tensor(float(torch.isfinite(loss.detach()).all()))
    if d.world > 1:
        import torch.distributed as dist

        dist.all_reduce(ok, op=dist.ReduceOp.MIN)
    return bool(ok.item())


# ---------------------------------------------------------------------------------------------- checkpoints


def _unwrap(model: nn.Module) -> nn.Module:
    return model.module if hasattr(model, "module") and isinstance(model, nn.parallel.DistributedDataParallel) else model


def save_checkpoint(ckpt_dir: Path, step: int, model: nn.Module, opt, gen: torch.Generator, history: list) -> Path:
    """Write a checkpoint folder atomically: files into a temp folder, rename it, then replace `latest`."""
    from safetensors.torch import save_file, save_model

    ckpt_dir.mkdir(parents=True, exist_ok=True)
    name = f"step-{step:07d}"
    tmp = ckpt_dir / f".{name}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    save_model(_unwrap(model), str(tmp / "model.safetensors"))

    opt_state = opt.state_dict()
    tensors, scalars = {}, {}
    for idx, st in opt_state["state"].items():
        for key, value in st.items():
            if isinstance(value, Tensor):
                tensors[f"state.{idx}.{key}"] = value.detach().contiguous().clone()
            else:
                scalars[f"{idx}.{key}"] = value
    tensors["rng.torch"] = torch.get_rng_state()
    tensors["rng.gen"] = gen.get_state()
    save_file(tensors, str(tmp / "optim.safetensors"))

    np_state = np.random.get_state()
    state = {
        "step": step,
        "param_groups": opt_state["param_groups"],
        "optim_scalars": scalars,
        "rng_python": [list(x) if isinstance(x, tuple) else x for x in random.getstate()],
        "rng_numpy": [np_state[0], np_state[1].tolist(), *np_state[2:]],
        "history": history,
    }
    (tmp / "state.json").write_text(json.dumps(state))
    final = ckpt_dir / name
    shutil.rmtree(final, ignore_errors=True)
    os.replace(tmp, final)
    latest_tmp = ckpt_dir / ".latest.tmp"
    latest_tmp.write_text(name)
    os.replace(latest_tmp, ckpt_dir / "latest")
    for old in ckpt_dir.glob("step-*"):
        if old.name != name:
            shutil.rmtree(old, ignore_errors=True)
    return final


def latest_checkpoint(ckpt_dir: Path) -> Path | None:
    pointer = Path(ckpt_dir) / "latest"
    if not pointer.exists():
        return None
    path = Path(ckpt_dir) / pointer.read_text().strip()
    return path if path.is_dir() else None


def load_checkpoint(path: Path, model: nn.Module, opt, gen: torch.Generator) -> dict:
    """Restore weights, optimiser, RNG states; return the JSON state (step, history)."""
    from safetensors.torch import load_file, load_model

    load_model(_unwrap(model), str(path / "model.safetensors"))
    state = json.loads((path / "state.json").read_text())
    tensors = load_file(str(path / "optim.safetensors"))
    opt_state: dict = {"state": {}, "param_groups": state["param_groups"]}
    for key, value in tensors.items():
        if key.startswith("state."):
            _, idx, name = key.split(".", 2)
            opt_state["state"].setdefault(int(idx), {})[name] = value
    for key, value in state["optim_scalars"].items():
        idx, name = key.split(".", 1)
        opt_state["state"].setdefault(int(idx), {})[name] = value
    for group in opt_state["param_groups"]:  # JSON turned tuples into lists
        if "betas" in group:
            group["betas"] = tuple(group["betas"])
    opt.load_state_dict(opt_state)
    torch.set_rng_state(tensors["rng.torch"])
    gen.set_state(tensors["rng.gen"])
    py = state["rng_python"]
    random.setstate((py[0], tuple(py[1]), py[2]))
    npst = state["rng_numpy"]
    np.random.set_state((npst[0], np.array(npst[1], dtype=np.uint32), *npst[2:]))
    return state


# ---------------------------------------------------------------------------------------------- the loop


def fit(
    model: nn.Module,
    cfg: TrainConfig,
    batch_fn: Callable[[int, torch.Generator], Any],
    loss_fn: Callable[[nn.Module, Any], Tensor],
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
    start_step = 0
    if resume and ckpt_dir is not None and (path := latest_checkpoint(ckpt_dir)) is not None:
        state = load_checkpoint(path, model, opt, gen)
        start_step, result.history = state["step"], state["history"]
        if ctx is not None and d.main and result.history:
            ctx.truncate_log_after(result.history[-1])  # rows logged after the checkpoint are logged again below

    bar = progress_bar(total=cfg.steps, initial=start_step, desc=desc, enabled=d.main)
    t0 = time.perf_counter()
    window: list[float] = []
    done = start_step  # optimiser steps taken so far
    for step in range(start_step, cfg.steps):
        factor = lr_factor(step, cfg)
        for g in opt.param_groups:
            g["lr"] = g["base_lr"] * factor
        model.train()
        batch = shard(batch_fn(step, gen), d)
        loss = loss_fn(train_model, batch)
        if not _all_finite(loss, d):
            last = latest_checkpoint(ckpt_dir) if ckpt_dir is not None else None
            kept = f"last good checkpoint kept at {last}" if last else "no checkpoint was written (set ckpt_every)"
            raise NonFiniteLoss(f"loss became {loss.item()} at step {step}; training stopped, {kept}")
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if cfg.grad_clip:
            nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        opt.step()

        done = step + 1
        if after_step is not None:
            after_step(done, model, opt, batch)
        window.append(loss.item())
        row: dict[str, Any] = {}
        if done % cfg.log_every == 0 or done == cfg.steps:
            # the schedule on the configured lr (groups with their own lr follow the same factor)
            row = {"step": done, "loss": sum(window) / len(window), "lr": cfg.lr * factor,
                   "elapsed_s": round(time.perf_counter() - t0, 3)}  # fmt: skip
            window.clear()
        out_of_time = cfg.time_limit_s is not None and time.perf_counter() - t0 > cfg.time_limit_s
        if eval_fn is not None and ((cfg.eval_every and done % cfg.eval_every == 0) or done == cfg.steps or out_of_time):
            metrics = evaluate(model, eval_fn)
            row = {"step": done, **row, **metrics}
            result.final = metrics
            bar.set_postfix({k: f"{v:.4g}" for k, v in metrics.items() if isinstance(v, float)}, refresh=False)
        if row:
            result.history.append(row)
            if ctx is not None and d.main:
                ctx.log(**row)
        if cfg.ckpt_every and done % cfg.ckpt_every == 0 and done < cfg.steps and d.main and ckpt_dir is not None:
            if not all(torch.isfinite(p).all() for p in model.parameters()):
                raise NonFiniteLoss(f"parameters became non-finite at step {done}; last good checkpoint kept")
            save_checkpoint(ckpt_dir, done, model, opt, gen, result.history)
        bar.set_description(f"{desc} loss {window[-1] if window else row.get('loss', 0):.4f}", refresh=False)
        bar.update(1)
        if out_of_time:
            result.stopped_early = True
            break
    bar.close()
    result.steps = done
    result.elapsed_s = time.perf_counter() - t0
    if eval_fn is not None and not result.final:
        result.final = evaluate(model, eval_fn)
    return result


@torch.no_grad()
def evaluate(model: nn.Module, eval_fn: Callable[[nn.Module], dict[str, float]]) -> dict[str, float]:
    """Run `eval_fn` in eval mode without gradients, then restore train mode."""
    was_training = model.training
    model.eval()
    try:
        return {k: float(v) if isinstance(v, int | float | Tensor) else v for k, v in eval_fn(model).items()}
    finally:
        model.train(was_training)

"""alexnet/relu-vs-tanh: AlexNet Section 3.1 / Fig 1, "a four-layer convolutional neural network with ReLUs reaches a
25% training error rate on CIFAR-10 six times faster than an equivalent network with tanh neurons".

Data, model, fit, measure, figures, in the paper's protocol scaled down:
- inputs standardised (the training subset's mean image subtracted, as AlexNet Section 2 does, then divided by the
  pixels' s.d.); each net with its activation's usual init (He for ReLU, Glorot for tanh; the output layer Glorot in
  both); plain SGD with momentum 0.9 at a constant rate, no clipping, no warmup;
- the target E*: a softmax regression is trained first on the same images, batches and optimiser, at its own
  pilot's rate, for ReLU's whole budget of steps, and E* is its training error minus `target_margin` (a rule fixed
  in advance): with the same training, a linear model does not get to E*, so reaching it needs the hidden units'
  nonlinear features, as 25% does on CIFAR-10 (far below a linear classifier there). (Fitted to convergence by
  L-BFGS, a softmax regression memorises a 10k subset down to about 2% training error, so the floor is the
  linear model's error at equal training, not its asymptote.);
- each net's learning rate from a short pilot (Section 3.1: "the learning rates for each network were chosen
  independently to make training as fast as possible"): `pilot_steps` steps at each rate of `lr_grid` from the
  net's init, and the rate with the lowest mean minibatch loss over the pilot's last quarter wins (a non-finite
  loss loses; ties go to the smaller rate);
- the ReLU net trains first and its steps to E* set the tanh arm's budget (`tanh_cap` times as many steps); both
  nets see the same batches, and each stops at its first evaluation at or below E* (`race`). Training error is
  measured in eval mode on a fixed training subset every `eval_every` steps.

A step count is a measurement only when the net crossed E*; a training budget is never counted as a crossing:
- `relu_steps`, `tanh_steps`: the first evaluated step at or below E*, None when the net never got there;
- `speedup` = tanh_steps / relu_steps, only when both crossed;
- `speedup_lower_bound` = tanh's budget / relu_steps when ReLU crossed and tanh did not (the true speedup is larger);
- `min_speedup`: the speedup, or that lower bound: what the check compares, None when ReLU never crossed. The
  experiment's precondition `relu_reached` then makes the run inconclusive: there is no speedup to measure.
- `min_speedup_se`, `min_speedup_ci`: its spread over bootstrap resamples of the evaluation images (each resample
  re-reads both crossings from the same per-image errors; a resample where ReLU does not cross counts as 0).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import Tensor, nn

from mlreads.core.errors import NonFiniteLoss
from mlreads.core.fields import choices, in_range, nonnegative, positive
from mlreads.core.run.runner import RunContext
from mlreads.core.run.seeding import init_rng
from mlreads.core.stats import bootstrap
from mlreads.core.train import TrainConfig, fit, recipe
from mlreads.vision.alexnet import SmallConvNet, SmallConvNetConfig
from mlreads.vision.exp_common import (
    DATASETS,
    batches,
    cross_entropy,
    load_images,
    standardise,
    subset,
)
from mlreads.vision.figures import steps_to_target_figure


@dataclass(frozen=True)
class ReluTanhConfig:
    dataset: str = choices("fashion", DATASETS)
    # 0: the whole 50k training split; else a subset
    n_train: int = nonnegative(10_000, what="0 means the whole split")
    # E*: 0 derives it from the linear model (its training error - target_margin); > 0 fixes it
    target_err: float = in_range(0.0, 0.0, 1.0)
    target_margin: float = in_range(0.05, 0.0, 1.0, lo_open=True)
    widths: tuple[int, int, int] = positive((16, 16, 32))
    batch_size: int = positive(64)
    lr_grid: tuple[float, ...] = positive((0.0025, 0.005, 0.01, 0.02, 0.04))
    pilot_steps: int = positive(200)
    tanh_cap: float = positive(4.0)  # the tanh arm trains at most this many times ReLU's steps to E*
    max_steps_tanh: int = positive(8000)
    n_train_eval: int = positive(5000)
    n_boot: int = positive(1000)
    # steps = ReLU's budget; lr is replaced by each net's pilot choice
    train: TrainConfig = field(default_factory=lambda: recipe(3000, 0.01, schedule="constant", optimizer="sgd",
                                                              betas=(0.9, 0.999), grad_clip=None,
                                                              eval_every=50))  # fmt: skip


def first_step_below(history: list[dict], target: float) -> int | None:
    for row in history:
        if "train_err" in row and row["train_err"] <= target:
            return row["step"]
    return None


def init_for(model: nn.Module, activation: str) -> nn.Module:
    """Each activation's usual init: He (fan-in, ReLU gain) for a ReLU net's convolutions, Glorot for a tanh net's;
    the output layer Glorot in both; biases zero."""
    for m in model.modules():
        if isinstance(m, nn.Conv2d | nn.Linear):
            if isinstance(m, nn.Conv2d) and activation == "relu":
                nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
            else:
                nn.init.xavier_uniform_(m.weight)
            nn.init.zeros_(m.bias)
    return model


def pilot_lr(activation: str, cfg: ReluTanhConfig, batch_fn, ctx: RunContext) -> tuple[float, dict]:
    """The pilot's rule, fixed in advance: from the net's init, `pilot_steps` steps at each rate of the grid; the
    lowest mean minibatch loss over the last quarter wins (non-finite loses, ties go to the smaller rate)."""
    scores = {}
    for lr in cfg.lr_grid:
        net = _net(activation, cfg, ctx)
        pilot = dataclasses.replace(cfg.train, steps=cfg.pilot_steps, lr=lr, eval_every=0, log_every=1)
        try:
            res = fit(net, pilot, batch_fn, cross_entropy, ctx=None, desc=f"pilot-{activation}-{lr:g}",
                      data_seed=ctx.seed_for("pilot"))  # fmt: skip
            tail = [r["loss"] for r in res.history if "loss" in r][-max(1, cfg.pilot_steps // 4):]
            scores[lr] = float(np.mean(tail)) if all(math.isfinite(v) for v in tail) else math.inf
        except NonFiniteLoss:
            scores[lr] = math.inf
    best = min(sorted(scores), key=lambda lr: scores[lr])
    return best, scores


def _net(activation: str, cfg: ReluTanhConfig, ctx: RunContext) -> nn.Module:
    """The ReLU or tanh CNN with its activation's init, or ("linear") the softmax regression on pixels."""
    with init_rng(ctx.seed_for(f"init/{activation}")):
        if activation == "linear":
            side = SmallConvNetConfig().image_size
            return init_for(nn.Sequential(nn.Flatten(), nn.Linear(side * side, 10)), activation)
        return init_for(SmallConvNet(SmallConvNetConfig(widths=cfg.widths, activation=activation)), activation)


class _Reached(Exception):
    """Raised from fit's after_step once an evaluation is at or below the target: this net's race is over."""


def race(model: nn.Module, train: TrainConfig, batch_fn, x_ev: Tensor, y_ev: Tensor, target: float | None,
         ctx: RunContext, desc: str) -> tuple[list[dict], list[np.ndarray]]:  # fmt: skip
    """Train `model` with fit until its first evaluation at or below `target` (the whole budget when None).
    Returns its evaluations [{"step", "train_err"}] and, for each, the per-image errors on (x_ev, y_ev)."""
    evals: list[dict] = []
    flags: list[np.ndarray] = []
    done = [0]

    def eval_fn(m):
        with torch.no_grad():
            wrong = torch.cat([m(xb).argmax(1) != yb for xb, yb in zip(x_ev.split(1000), y_ev.split(1000))])
        flags.append(wrong.numpy())
        evals.append({"step": done[0], "train_err": float(wrong.float().mean())})
        return {"train_err": evals[-1]["train_err"]}

    def after_step(step, *_):  # runs before the evaluation of the same step
        if target is not None and evals and evals[-1]["train_err"] <= target:
            raise _Reached
        done[0] = step

    try:
        fit(model, train, batch_fn, cross_entropy, eval_fn, ctx=ctx, desc=desc, after_step=after_step)
    except _Reached:
        pass
    return evals, flags


def run_relu_vs_tanh(cfg: ReluTanhConfig, ctx: RunContext) -> dict:
    data = load_images(cfg.dataset)
    x_tr, y_tr = data["train"]
    if cfg.n_train:
        x_tr, y_tr = subset(x_tr, y_tr, cfg.n_train, ctx.generator("train-subset"))
    (x_tr,) = standardise(x_tr)
    ev = torch.randperm(len(x_tr), generator=ctx.generator("train-eval"))[: min(cfg.n_train_eval, len(x_tr))]
    x_ev, y_ev = x_tr[ev], y_tr[ev]
    batch_fn = batches(x_tr, y_tr, cfg.batch_size)

    metrics: dict = {"dataset": cfg.dataset}
    lrs = {}
    for act in ("linear", "relu", "tanh"):
        lrs[act], scores = pilot_lr(act, cfg, batch_fn, ctx)
        metrics[f"lr_{act}"] = lrs[act]
        metrics[f"pilot_loss_{act}"] = {f"{lr:g}": s for lr, s in scores.items()}
    # the linear model's training error after ReLU's whole budget, on the same batches: E* lies below it
    linear, _ = race(_net("linear", cfg, ctx), dataclasses.replace(cfg.train, lr=lrs["linear"]), batch_fn, x_ev,
                     y_ev, None, ctx, "linear")  # fmt: skip
    floor = linear[-1]["train_err"]
    target = cfg.target_err if cfg.target_err > 0 else floor - cfg.target_margin
    metrics |= {"linear_train_err": floor, "target_err": target}

    nets = {act: _net(act, cfg, ctx) for act in ("relu", "tanh")}
    relu, relu_flags = race(nets["relu"], dataclasses.replace(cfg.train, lr=lrs["relu"]), batch_fn, x_ev, y_ev, target,
                            ctx, "relu")  # fmt: skip
    relu_steps = first_step_below(relu, target)
    metrics["relu_reached"] = relu_steps is not None
    metrics["relu_steps"] = relu_steps  # None: ReLU never reached E*; its budget is not a crossing
    # tanh's budget: tanh_cap x ReLU's steps to E* (or x ReLU's whole budget when it never got there, for the figure)
    reference = relu_steps if relu_steps is not None else relu[-1]["step"]
    tanh_budget = min(cfg.max_steps_tanh, int(cfg.tanh_cap * reference))
    tanh_budget = max(cfg.train.eval_every, tanh_budget - tanh_budget % cfg.train.eval_every)
    tanh, tanh_flags = race(nets["tanh"], dataclasses.replace(cfg.train, lr=lrs["tanh"], steps=tanh_budget), batch_fn,
                            x_ev, y_ev, target, ctx, "tanh")  # fmt: skip
    for act, net in nets.items():  # each stopped at E* (or its budget)
        ctx.save_model(act, net.eval(), dataset=cfg.dataset, image_side=28)
    tanh_steps = first_step_below(tanh, target)
    metrics["tanh_reached"] = tanh_steps is not None
    metrics["tanh_steps"] = tanh_steps  # None: tanh never reached E* within tanh_budget
    metrics["tanh_budget"] = tanh_budget
    metrics.update(speedups(relu_steps, tanh_steps, tanh_budget))
    if relu_steps is not None:
        metrics |= speedup_spread(relu, tanh, relu_flags, tanh_flags, target, tanh_budget, cfg.n_boot,
                                  ctx.seed_for("bootstrap"))  # fmt: skip
    metrics["relu_first"] = metrics["relu_reached"] and (tanh_steps is None or relu_steps < tanh_steps)
    metrics["final_train_err_relu"] = relu[-1]["train_err"]
    metrics["final_train_err_tanh"] = tanh[-1]["train_err"]
    histories = {"ReLU": relu, "tanh": tanh, "softmax regression": linear}
    reached = {name: (f"step {n}" if n is not None else "never") for name, n in (("relu", relu_steps),
                                                                                ("tanh", tanh_steps))}  # fmt: skip
    title = (f"E* = {100 * target:.1f}%: ReLU reached it at {reached['relu']}, tanh at {reached['tanh']} "
             f"(budget {tanh_budget}); {_outcome(metrics)}")
    ctx.savefig(steps_to_target_figure(histories, target, len(x_tr) / cfg.batch_size, title, floor),
                "fig1_relu_vs_tanh",
                caption=("Training error against epochs for the same four-layer CNN with ReLU and with tanh units, "
                         f"each at its pilot's learning rate (ReLU {lrs['relu']:g}, tanh {lrs['tanh']:g}), each "
                         f"stopped at the target: the dotted line, {100 * target:.1f}% training error, "
                         f"{100 * (floor - target):.0f} points below the {100 * floor:.1f}% that a softmax regression "
                         "reaches with ReLU's whole budget of steps (dashed; its curve in green). Paper: ReLU's curve "
                         f"crosses the target several times sooner than tanh's. This run: {_outcome(metrics)}."))
    return metrics


def speedups(relu_steps: int | None, tanh_steps: int | None, tanh_budget: int) -> dict:
    """`speedup` (both crossed), `speedup_lower_bound` (only ReLU crossed) and `min_speedup` (either; None when ReLU
    never crossed): no value is ever computed from a budget standing in for a crossing."""
    speedup = tanh_steps / relu_steps if relu_steps is not None and tanh_steps is not None else None
    lower = tanh_budget / relu_steps if relu_steps is not None and tanh_steps is None else None
    return {"speedup": speedup, "speedup_lower_bound": lower, "min_speedup": speedup if speedup is not None else lower}


def speedup_spread(relu: list[dict], tanh: list[dict], relu_flags: list, tanh_flags: list, target: float,
                   tanh_budget: int, n_boot: int, seed: int) -> dict:  # fmt: skip
    """`min_speedup_se` and `min_speedup_ci` over bootstrap resamples of the evaluation images: each resample
    re-reads both nets' crossings from their per-image errors at every evaluation (0 when ReLU does not cross)."""
    steps = {"relu": [r["step"] for r in relu], "tanh": [r["step"] for r in tanh]}
    n_relu = len(relu_flags)
    table = np.stack(relu_flags + tanh_flags, axis=1)  # (images, evaluations of both nets)

    def statistic(rows: np.ndarray) -> float:
        errs = rows.mean(0)
        crossed = {name: next((s for s, e in zip(steps[name], part) if e <= target), None)
                   for name, part in (("relu", errs[:n_relu]), ("tanh", errs[n_relu:]))}  # fmt: skip
        value = speedups(crossed["relu"], crossed["tanh"], tanh_budget)["min_speedup"]
        return 0.0 if value is None else float(value)

    out = bootstrap("min_speedup", table, statistic, n_boot=n_boot, seed=seed)
    return {"min_speedup_se": out["min_speedup_se"], "min_speedup_ci": out["min_speedup_ci"]}


def _outcome(metrics: dict) -> str:
    if not metrics["relu_reached"]:
        return "ReLU never reached the target, so there is no speedup to measure"
    if metrics["speedup"] is not None:
        return f"tanh needed {metrics['speedup']:.1f}x ReLU's steps"
    return f"tanh did not reach it in {metrics['speedup_lower_bound']:.1f}x ReLU's steps (a lower bound on the speedup)"

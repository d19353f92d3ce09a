"""alexnet/relu-vs-tanh: AlexNet Section 3.1 / Fig 1, "a four-layer convolutional neural network with ReLUs reaches a
25% training error rate on CIFAR-10 six times faster than an equivalent network with tanh neurons".

Data, model, fit, measure, figures: the ReLU net trains first and its steps to the target training error E* set the
tanh arm's budget (`tanh_cap` times as many steps); both nets see the same batches. Training error is measured in
eval mode on a fixed training subset every `eval_every` steps.

A step count is a measurement only when the net crossed E*; a training budget is never counted as a crossing:
- `relu_steps`, `tanh_steps`: the first evaluated step at or below E*, None when the net never got there;
- `speedup` = tanh_steps / relu_steps, only when both crossed;
- `speedup_lower_bound` = tanh's budget / relu_steps when ReLU crossed and tanh did not (the true speedup is larger);
- `min_speedup`: the speedup, or that lower bound: what the check compares, None when ReLU never crossed. The
  experiment's precondition `relu_reached` then makes the run inconclusive: there is no speedup to measure.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from mlreads.core.fields import choices, in_range, nonnegative, positive
from mlreads.core.run.runner import RunContext
from mlreads.core.run.seeding import init_rng
from mlreads.core.train import TrainConfig, fit, recipe
from mlreads.vision.alexnet import SmallConvNet, SmallConvNetConfig
from mlreads.vision.exp_common import (
    DATASETS,
    batches,
    cross_entropy,
    error_rate,
    load_images,
    subset,
)
from mlreads.vision.figures import steps_to_target_figure


@dataclass(frozen=True)
class ReluTanhConfig:
    dataset: str = choices("fashion", DATASETS)
    # 0: the whole 50k training split; else a subset (smoke)
    n_train: int = nonnegative(0, what="0 means the whole split")
    target_err: float = in_range(0.10, 0.0, 1.0, lo_open=True)  # E*: Fashion-MNIST is easier than CIFAR-10 (paper: 25%)
    widths: tuple[int, int, int] = positive((16, 16, 32))
    batch_size: int = positive(64)
    lr_relu: float = positive(0.02)
    lr_tanh: float = positive(0.02)
    tanh_cap: float = positive(4.0)  # the tanh arm trains at most this many times ReLU's steps to E*
    max_steps_tanh: int = positive(4000)
    n_train_eval: int = positive(5000)
    train: TrainConfig = field(default_factory=lambda: recipe(1500, 0.02, warmup=50, schedule="constant",
                                                              optimizer="sgd", betas=(0.9, 0.999), grad_clip=1.0,
                                                              eval_every=50))  # fmt: skip


def first_step_below(history: list[dict], target: float) -> int | None:
    for row in history:
        if "train_err" in row and row["train_err"] <= target:
            return row["step"]
    return None


def run_relu_vs_tanh(cfg: ReluTanhConfig, ctx: RunContext) -> dict:
    data = load_images(cfg.dataset)
    x_tr, y_tr = data["train"]
    if cfg.n_train:
        x_tr, y_tr = subset(x_tr, y_tr, cfg.n_train, ctx.generator("train-subset"))
    x_ev, y_ev = subset(x_tr, y_tr, min(cfg.n_train_eval, len(x_tr)), ctx.generator("train-eval"))
    batch_fn = batches(x_tr, y_tr, cfg.batch_size)
    eval_fn = lambda m: {"train_err": error_rate(m, x_ev, y_ev)}

    histories, metrics = {}, {"dataset": cfg.dataset, "target_err": cfg.target_err}
    with init_rng(ctx.seed_for("init/relu")):
        relu = SmallConvNet(SmallConvNetConfig(widths=cfg.widths, activation="relu"))
    res = fit(relu, dataclasses.replace(cfg.train, lr=cfg.lr_relu), batch_fn, cross_entropy, eval_fn, ctx=ctx,
              desc="relu")  # fmt: skip
    histories["ReLU"] = res.history
    relu_steps = first_step_below(res.history, cfg.target_err)
    metrics["relu_reached"] = relu_steps is not None
    metrics["relu_steps"] = relu_steps  # None: ReLU never reached E*; its budget is not a crossing
    # tanh's budget: tanh_cap x ReLU's steps to E* (or x ReLU's whole budget when it never got there, for the figure)
    tanh_budget = min(cfg.max_steps_tanh, int(cfg.tanh_cap * (relu_steps if relu_steps is not None else res.steps)))
    tanh_budget = max(cfg.train.eval_every, tanh_budget - tanh_budget % cfg.train.eval_every)

    with init_rng(ctx.seed_for("init/tanh")):
        tanh = SmallConvNet(SmallConvNetConfig(widths=cfg.widths, activation="tanh"))
    res = fit(tanh, dataclasses.replace(cfg.train, lr=cfg.lr_tanh, steps=tanh_budget), batch_fn, cross_entropy,
              eval_fn, ctx=ctx, desc="tanh")  # fmt: skip
    histories["tanh"] = res.history
    for arm, net in (("relu", relu), ("tanh", tanh)):
        ctx.save_model(arm, net, dataset=cfg.dataset, image_side=28)
    tanh_steps = first_step_below(res.history, cfg.target_err)
    metrics["tanh_reached"] = tanh_steps is not None
    metrics["tanh_steps"] = tanh_steps  # None: tanh never reached E* within tanh_budget
    metrics["tanh_budget"] = tanh_budget
    metrics.update(speedups(relu_steps, tanh_steps, tanh_budget))
    metrics["relu_first"] = metrics["relu_reached"] and (tanh_steps is None or relu_steps < tanh_steps)
    metrics["final_train_err_relu"] = histories["ReLU"][-1].get("train_err")
    metrics["final_train_err_tanh"] = res.final["train_err"]
    ctx.savefig(steps_to_target_figure(histories, cfg.target_err, len(x_tr) / cfg.batch_size), "fig1_relu_vs_tanh",
                caption=("Training error against epochs for the same four-layer CNN with ReLU and with tanh units; "
                         f"the dotted line is the target, {100 * cfg.target_err:.0f}% training error. Paper: ReLU's "
                         f"curve crosses it several times sooner than tanh's. This run: {_outcome(metrics)}."))
    return metrics


def speedups(relu_steps: int | None, tanh_steps: int | None, tanh_budget: int) -> dict:
    """`speedup` (both crossed), `speedup_lower_bound` (only ReLU crossed) and `min_speedup` (either; None when ReLU
    never crossed): no value is ever computed from a budget standing in for a crossing."""
    speedup = tanh_steps / relu_steps if relu_steps is not None and tanh_steps is not None else None
    lower = tanh_budget / relu_steps if relu_steps is not None and tanh_steps is None else None
    return {"speedup": speedup, "speedup_lower_bound": lower, "min_speedup": speedup if speedup is not None else lower}


def _outcome(metrics: dict) -> str:
    if not metrics["relu_reached"]:
        return "ReLU never reached the target, so there is no speedup to measure"
    if metrics["speedup"] is not None:
        return f"tanh needed {metrics['speedup']:.1f}x ReLU's steps"
    return f"tanh did not reach it in {metrics['speedup_lower_bound']:.1f}x ReLU's steps (a lower bound on the speedup)"

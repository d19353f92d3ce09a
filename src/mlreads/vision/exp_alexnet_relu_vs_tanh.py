"""alexnet/relu-vs-tanh: AlexNet Section 3.1 / Fig 1, "a four-layer convolutional neural network with ReLUs reaches
a 25% training error rate on CIFAR-10 six times faster than an equivalent network with tanh neurons", where "the
learning rates for each network were chosen independently to make training as fast as possible".

Data, model, fit, measure, figures, in the paper's protocol scaled down (design 5):
- the whole training split by default (Fig 1 trains on CIFAR-10's), inputs standardised (the training set's mean
  image subtracted, as AlexNet Section 2 does, then divided by the pixels' s.d.); each net's convolutions with its
  activation's usual init (He for ReLU, Glorot for tanh), the output layer from the paper's N(0, 0.01) in both
  (Section 5), so that both start near chance (`init_for`); plain SGD with momentum 0.9 at a constant rate, no
  clipping, no warmup; every net of one activation starts from the same init and sees the same batches, whatever its
  rate;
- the target E*, fixed before any race: a softmax regression is trained at every rate of `lr_grid` for ReLU's whole
  budget of steps on the same batches; its floor is the lowest final training error over the rates (the best linear
  model at equal training), and E* is that floor minus `target_margin`: reaching E* within the budget needs the
  hidden units' nonlinear features, as 25% does on CIFAR-10 (far below a linear classifier there);
- each net's rate by the paper's own criterion, the fewest steps to E* (`race`, `search`): the net is trained at
  every rate of `lr_grid` in lockstep (one `fit`; the nets share nothing but the batches), and the first rate whose
  evaluation is at or below E* wins (the smaller rate on a tie); the others stop there, since none can now be faster.
  When the best rate sits at an edge of the rates raced, the next rate beyond that edge (x2 or /2) is raced from
  the same init and replaces it by crossing sooner (capped one evaluation short of its crossing), at most
  `max_extend` such rates; where no rate crossed, the best is the one nearest to E* at the cap (the lowest final
  training error), and a rate beyond it trains as long and replaces it by crossing or by ending nearer E*. A
  non-finite loss stops that rate only (it never crosses). The rule is the same for both nets;
- ReLU is raced first, for at most `train.steps`; its fastest crossing sets tanh's cap, `tanh_cap` times as many
  steps; all CNN steps of the run (every rate, both nets) count against `max_net_steps`, the budget's bound, and a
  race is cut where it would pass it. The winning rate trains `overrun` of its steps past its crossing, so that the
  bootstrap can re-read crossings that fall after the point estimate's. Training error is measured in eval mode on
  a fixed training subset every `train.eval_every` steps.

A step count is a measurement only when the net crossed E*; a budget is never counted as a crossing:
- `relu_steps`, `tanh_steps`: the fastest rate's first evaluated step at or below E*, None when no rate got there;
- `speedup` = tanh_steps / relu_steps, only when both crossed;
- `speedup_lower_bound` = tanh's cap / relu_steps when ReLU crossed and tanh did not at any rate;
- `speedup_upper_bound` (for the record; the run is inconclusive then): tanh_steps / the steps ReLU's rates trained,
  when tanh crossed and ReLU did not;
- `min_speedup`: the speedup, or that lower bound: what the check compares, None when ReLU never crossed. The
  precondition `relu_reached` then makes the run inconclusive: there is no speedup to measure. The precondition
  `tanh_decided` asks that tanh crossed, or was raced for at least CLAIM_SPEEDUP x ReLU's steps without crossing:
  a lower bound below the claim's, from a cap the run's budget cut, is no evidence against it;
- `min_speedup_se`, `min_speedup_ci`: its spread over bootstrap resamples of the evaluation images; each resample
  re-reads every rate's crossing from the same per-image errors and takes each net's fastest (a resample where
  ReLU crosses at no rate counts as 0; one where tanh does not, as the lower bound from its rates' last evaluation).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import Tensor, nn

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
from mlreads.vision.figures import rate_search_figure, steps_to_target_figure

CLAIM_SPEEDUP = 3.0  # "several times faster": the checks' bound (experiments.py) and what tanh's cap must allow


@dataclass(frozen=True)
class ReluTanhConfig:
    dataset: str = choices("fashion", DATASETS)
    # 0: the whole 50k training split; else a subset
    n_train: int = nonnegative(0, what="0 means the whole split")
    # E*: 0 derives it from the linear model (its training error - target_margin); > 0 fixes it
    target_err: float = in_range(0.0, 0.0, 1.0)
    target_margin: float = in_range(0.05, 0.0, 1.0, lo_open=True)
    widths: tuple[int, int, int] = positive((16, 16, 32))
    batch_size: int = positive(64)
    lr_grid: tuple[float, ...] = positive((0.007, 0.014))  # each net and the linear model race at every rate
    max_extend: int = nonnegative(2)  # rates raced beyond the grid's edge when the fastest rate is at that edge
    tanh_cap: float = positive(4.0)  # the tanh races train at most this many times ReLU's steps to E*
    max_net_steps: int = positive(28_000)  # all CNN steps of the run (rates x steps, both nets): the budget's bound
    overrun: float = nonnegative(0.1)  # the winning rate trains this share of its steps past E*, for the bootstrap
    n_train_eval: int = positive(2000)
    n_boot: int = positive(1000)
    # steps = ReLU's cap and the linear model's budget; lr is replaced by each race's rates
    train: TrainConfig = field(default_factory=lambda: recipe(3000, 0.01, schedule="constant", optimizer="sgd",
                                                              betas=(0.9, 0.999), grad_clip=None,
                                                              eval_every=100))  # fmt: skip


@dataclass
class Arm:
    """One net trained at one learning rate in a race: its evaluations and, for each, its per-image errors."""

    lr: float
    net: nn.Module
    evals: list[dict] = field(default_factory=list)  # {"step", "train_err"}
    flags: list[np.ndarray] = field(default_factory=list)  # per evaluation: which evaluation images it got wrong
    steps: int | None = None  # its first evaluated step at or below the target, when it won its race
    diverged: bool = False

    def summary(self) -> dict:
        last = self.evals[-1] if self.evals else {"step": 0, "train_err": None}
        return {"steps": self.steps, "last_step": last["step"], "last_err": last["train_err"],
                "diverged": self.diverged}  # fmt: skip


class _Stop(Exception):
    """Raised from fit's after_step once a race is over (its last evaluation taken, or every rate diverged)."""


class Budget:
    """The CNN steps the run may still take (`max_net_steps`), spent by every rate of every race."""

    def __init__(self, total: int):
        self.total, self.used = total, 0

    def cap(self, steps: int, n_rates: int, every: int) -> int:
        """`steps`, cut so that `n_rates` nets in lockstep stay within the budget; a multiple of `every`."""
        return min(steps, (self.total - self.used) // max(1, n_rates)) // every * every


def first_step_below(history: list[dict], target: float) -> int | None:
    for row in history:
        if "train_err" in row and row["train_err"] <= target:
            return row["step"]
    return None


OUTPUT_INIT_SD = 0.01  # AlexNet Section 5: "weights in each layer from a zero-mean Gaussian with s.d. 0.01"


def init_for(model: nn.Module, activation: str) -> nn.Module:
    """The convolutions with each activation's usual init: He (fan-in, ReLU gain) in a ReLU net, Glorot in a tanh
    net. Every linear layer (the CNN's output layer; the softmax regression's only layer) from the paper's
    N(0, 0.01) whatever the activation, so that every model starts near chance (loss about ln 10). Biases zero.

    Why not Glorot for the output layer too (design 4): on He-scaled ReLU features (max-pooled, rms 2.7) it gave
    logits of s.d. 3 at init (loss 5.9 on Fashion-MNIST, where tanh's was 2.4), gradients 20-30x tanh's, and the
    first momentum steps shed that confidence by turning conv2's channels off for good (their inputs are ReLU
    outputs, all >= 0): 15 of 16 dead within 10 steps at lr 0.014, 11 at 0.007."""
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            if activation == "relu":
                nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
            else:
                nn.init.xavier_uniform_(m.weight)
        elif isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, 0.0, OUTPUT_INIT_SD)
        if isinstance(m, nn.Conv2d | nn.Linear):
            nn.init.zeros_(m.bias)
    return model


def _net(activation: str, cfg: ReluTanhConfig, ctx: RunContext) -> nn.Module:
    """The ReLU or tanh CNN with its activation's init, or ("linear") the softmax regression on pixels; the same
    weights at every call for one activation, so every rate starts from the same init."""
    with init_rng(ctx.seed_for(f"init/{activation}")):
        if activation == "linear":
            side = SmallConvNetConfig().image_size
            return init_for(nn.Sequential(nn.Flatten(), nn.Linear(side * side, 10)), activation)
        net = init_for(SmallConvNet(SmallConvNetConfig(widths=cfg.widths, activation=activation)), activation)
    return net.to(memory_format=torch.channels_last)  # the same numbers, about 35% less CPU per step


def race(activation: str, rates: list[float], cap: int, target: float | None, cfg: ReluTanhConfig, batch_fn,
         x_ev: Tensor, y_ev: Tensor, ctx: RunContext, budget: Budget | None, desc: str) -> list[Arm]:  # fmt: skip
    """Train the `activation` net at every rate of `rates` in lockstep, from the same init on the same batches, for at
    most `cap` steps. With a target, the first evaluation at which some rate is at or below it ends the race: that
    rate (the smallest on a tie) gets `steps` and trains `cfg.overrun` of its steps more, the others stop. Without a
    target every rate trains `cap` steps. `budget` (None: not counted) is charged one step per net per step."""
    every = cfg.train.eval_every
    arms = [Arm(lr, _net(activation, cfg, ctx)) for lr in rates]
    active = list(arms)
    done, stop, won = [0], [cap], [False]

    def loss_fn(_model, batch):
        if done[0] >= stop[0]:  # the race's last evaluation is taken: stop before another step
            raise _Stop
        total = None
        for arm in list(active):
            loss = cross_entropy(arm.net, batch)
            if not math.isfinite(loss.item()):  # this rate diverged: it stops, the others go on
                arm.diverged = True
                active.remove(arm)
                continue
            total = loss if total is None else total + loss  # disjoint nets: each gets its own loss's gradient
        if total is None:
            raise _Stop
        if budget is not None:
            budget.used += len(active)
        return total

    def eval_fn(_model):
        for arm in active:
            with torch.no_grad():
                # chunks of 250: half the CPU of 1000 here (smaller activations stay in cache)
                wrong = torch.cat([arm.net(xb).argmax(1) != yb for xb, yb in zip(x_ev.split(250), y_ev.split(250))])
            arm.flags.append(wrong.numpy())
            arm.evals.append({"step": done[0], "train_err": float(wrong.float().mean())})
        out = {f"train_err_{arm.lr:g}": arm.evals[-1]["train_err"] for arm in active}
        crossed = [a for a in active if target is not None and a.evals[-1]["train_err"] <= target]
        if crossed and not won[0]:
            won[0] = True
            winner = min(crossed, key=lambda a: a.lr)
            winner.steps = done[0]
            active[:] = [winner]
            extra = math.ceil(cfg.overrun * done[0] / every) * every
            stop[0] = done[0] + (extra if budget is None else budget.cap(extra, 1, every))
        return out

    def after_step(step, *_):  # runs before the evaluation of the same step
        done[0] = step

    model = nn.ModuleList([a.net for a in arms])
    groups = [{"params": list(a.net.parameters()), "lr": a.lr} for a in arms]
    steps = cap + (math.ceil(cfg.overrun * cap / every) * every if target is not None else 0)
    train = dataclasses.replace(cfg.train, steps=max(steps, every))
    try:
        fit(model, train, batch_fn, loss_fn, eval_fn, ctx=ctx, groups=groups, desc=desc, after_step=after_step)
    except _Stop:
        pass
    return arms


def best_of(arms: list[Arm]) -> Arm:
    """The paper's criterion: the arm that crossed the target first (fewest steps); among arms that never crossed,
    the one nearest to it, the lowest final training error; diverged arms last, the smaller rate on a tie."""
    return min(arms, key=lambda a: (a.steps is None, a.steps or 0, a.diverged,
                                    a.evals[-1]["train_err"] if a.evals else 1.0, a.lr))  # fmt: skip


def fastest(arms: list[Arm]) -> Arm | None:
    """The arm that crossed the target first (the smaller rate on a tie), None when none crossed."""
    best = best_of(arms)
    return best if best.steps is not None else None


def beyond_edge(raced: list[float], best: float) -> float | None:
    """The next rate beyond the grid's edge where `best` sits (x2 above, /2 below); None when it is inside."""
    if best == max(raced):
        return best * 2
    if best == min(raced):
        return best / 2
    return None


def search(activation: str, cap: int, target: float | None, cfg: ReluTanhConfig, data: tuple, ctx: RunContext,
           budget: Budget | None) -> tuple[Arm, list[Arm]]:  # fmt: skip
    """`race` over `cfg.lr_grid`, then beyond its edge while the best rate (`best_of`) sits there, at most
    `cfg.max_extend` rates. A rate beyond the edge of one that crossed is capped one evaluation short of its crossing
    (it must be faster); beyond one that did not cross (or without a target), it trains as long as the grid did and
    replaces it by crossing, or by ending nearer the target. Returns the best arm and every arm raced."""
    every = cfg.train.eval_every
    rates = sorted(set(cfg.lr_grid))
    first_cap = cap if budget is None else budget.cap(cap, len(rates), every)
    arms = race(activation, rates, first_cap, target, cfg, *data, ctx, budget, activation)
    best = best_of(arms)
    for _ in range(cfg.max_extend):
        lr = beyond_edge([a.lr for a in arms], best.lr) if not best.diverged else None
        if lr is None:
            break
        want = best.steps - every if best.steps is not None else first_cap
        ext_cap = want if budget is None else budget.cap(want, 1, every)
        if ext_cap < every or (best.steps is None and ext_cap < want):  # final errors compare at equal steps only
            break
        (arm,) = race(activation, [lr], ext_cap, target, cfg, *data, ctx, budget, f"{activation}-lr{lr:g}")
        arms.append(arm)
        if best_of([best, arm]) is not arm:
            break
        best = arm
    return best, arms


def run_relu_vs_tanh(cfg: ReluTanhConfig, ctx: RunContext) -> dict:
    raw = load_images(cfg.dataset)
    x_tr, y_tr = raw["train"]
    if cfg.n_train:
        x_tr, y_tr = subset(x_tr, y_tr, cfg.n_train, ctx.generator("train-subset"))
    (x_tr,) = standardise(x_tr)
    ev = torch.randperm(len(x_tr), generator=ctx.generator("train-eval"))[: min(cfg.n_train_eval, len(x_tr))]
    data = (batches(x_tr, y_tr, cfg.batch_size), x_tr[ev], y_tr[ev])
    every, cap = cfg.train.eval_every, cfg.train.steps
    metrics: dict = {"dataset": cfg.dataset}

    # E* first, from the best linear model at ReLU's whole budget: fixed before any net is raced
    linear, linear_arms = search("linear", cap, None, cfg, data, ctx, None)
    floor = linear.evals[-1]["train_err"]
    target = cfg.target_err if cfg.target_err > 0 else floor - cfg.target_margin
    metrics |= {"lr_linear": linear.lr, "linear_train_err": floor, "target_err": target,
                "linear_by_lr": {f"{a.lr:g}": a.summary() for a in linear_arms}}  # fmt: skip

    budget = Budget(cfg.max_net_steps)
    relu, relu_arms = search("relu", cap, target, cfg, data, ctx, budget)
    relu_steps = relu.steps  # None: no rate reached E*; a budget is never counted as a crossing
    # tanh's cap: tanh_cap x ReLU's steps to E*, or ReLU's own budget when ReLU never got there (for the figure)
    wanted = int(cfg.tanh_cap * relu_steps) // every * every if relu_steps is not None else cap
    tanh_budget = budget.cap(wanted, len(set(cfg.lr_grid)), every)
    tanh, tanh_arms = search("tanh", max(tanh_budget, every), target, cfg, data, ctx, budget)
    tanh_steps = tanh.steps
    metrics |= {"lr_relu": relu.lr, "lr_tanh": tanh.lr,  # the fastest rate, or the nearest to E* where none crossed
                "relu_reached": relu_steps is not None, "relu_steps": relu_steps,
                "tanh_reached": tanh_steps is not None, "tanh_steps": tanh_steps,
                "tanh_budget": tanh_budget, "tanh_budget_cut": tanh_budget < wanted,
                "relu_by_lr": {f"{a.lr:g}": a.summary() for a in relu_arms},
                "tanh_by_lr": {f"{a.lr:g}": a.summary() for a in tanh_arms}}  # fmt: skip
    metrics.update(speedups(relu_steps, tanh_steps, tanh_budget))
    metrics["tanh_decided"] = tanh_steps is not None or (
        relu_steps is not None and tanh_budget >= CLAIM_SPEEDUP * relu_steps)
    # for the record only (the run is then inconclusive): tanh crossed and ReLU did not by the step each of its rates
    # trained to, so the speedup over the rates raced is below tanh's steps / that step
    relu_last = min((a.evals[-1]["step"] for a in relu_arms if a.evals and not a.diverged), default=None)
    metrics["speedup_upper_bound"] = (tanh_steps / relu_last if relu_steps is None and tanh_steps is not None
                                      and relu_last else None)  # fmt: skip
    if relu_steps is not None:
        metrics |= speedup_spread(relu_arms, tanh_arms, target, cfg.n_boot, ctx.seed_for("bootstrap"))
    metrics["relu_first"] = metrics["relu_reached"] and (tanh_steps is None or relu_steps < tanh_steps)
    shown = {"relu": relu, "tanh": tanh}  # the fastest rate, or the nearest to E* where none crossed
    for act, arm in shown.items():
        metrics[f"final_train_err_{act}"] = arm.summary()["last_err"]
        ctx.save_model(act, arm.net.eval(), dataset=cfg.dataset, image_side=28, lr=arm.lr)
    metrics["net_steps"] = budget.used
    _figures(metrics, shown, linear, relu_arms, tanh_arms, len(x_tr) / cfg.batch_size, ctx)
    return metrics


def _figures(metrics: dict, shown: dict, linear: Arm, relu_arms: list, tanh_arms: list, per_epoch: float,
             ctx: RunContext) -> None:  # fmt: skip
    target, floor = metrics["target_err"], metrics["linear_train_err"]
    reached = {k: (f"at step {metrics[f'{k}_steps']}" if metrics[f"{k}_steps"] is not None else "never")
               for k in ("relu", "tanh")}  # fmt: skip
    title = (f"target E* = {100 * target:.1f}% training error: ReLU reached it {reached['relu']}, tanh "
             f"{reached['tanh']} (cap {metrics['tanh_budget']})\n{_outcome(metrics)}")
    histories = {f"ReLU (lr {shown['relu'].lr:g})": shown["relu"].evals,
                 f"tanh (lr {shown['tanh'].lr:g})": shown["tanh"].evals,
                 f"softmax regression (lr {linear.lr:g})": linear.evals}  # fmt: skip
    ctx.savefig(steps_to_target_figure(histories, target, per_epoch, title, floor), "fig1_relu_vs_tanh",
                caption=("Training error against epochs for the same four-layer CNN with ReLU and with tanh units, "
                         "each at its fastest rate of the grid (the rate that first reached the target; the lowest "
                         f"final error where none did), ReLU {shown['relu'].lr:g}, tanh {shown['tanh'].lr:g}: the "
                         f"dotted line is the target, {100 * target:.1f}% training error, "
                         f"{100 * (floor - target):.0f} points below the {100 * floor:.1f}% that the best softmax "
                         "regression of the grid reaches with ReLU's whole budget of steps (dashed; its curve in "
                         "green). Paper: ReLU's curve crosses the target several times sooner than tanh's. This run: "
                         f"{_outcome(metrics)}."))  # fmt: skip
    ctx.savefig(rate_search_figure({"ReLU": relu_arms, "tanh": tanh_arms}, f"rate search: {_outcome(metrics)}"),
                "rate_search",
                caption=("Steps to the target at each learning rate raced, for each net (filled: the fastest rate, "
                         "which crossed; open triangle: stopped without crossing at that step, either because "
                         "a faster rate had crossed or at the cap; x: diverged). Paper: 'the learning rates for each "
                         "network were chosen independently to make training as fast as possible'."))  # fmt: skip


def speedups(relu_steps: int | None, tanh_steps: int | None, tanh_budget: int) -> dict:
    """`speedup` (both crossed), `speedup_lower_bound` (only ReLU crossed) and `min_speedup` (either; None when ReLU
    never crossed): no value is ever computed from a budget standing in for a crossing."""
    speedup = tanh_steps / relu_steps if relu_steps is not None and tanh_steps is not None else None
    lower = tanh_budget / relu_steps if relu_steps is not None and tanh_steps is None else None
    return {"speedup": speedup, "speedup_lower_bound": lower, "min_speedup": speedup if speedup is not None else lower}


def speedup_spread(relu_arms: list[Arm], tanh_arms: list[Arm], target: float, n_boot: int, seed: int) -> dict:
    """`min_speedup_se` and `min_speedup_ci` over bootstrap resamples of the evaluation images: each resample
    re-reads every rate's crossing from its per-image errors and takes each net's fastest (0 when ReLU crosses at no
    rate; when tanh crosses at none, the lower bound from the earliest last evaluation of its non-diverged rates)."""
    arms = relu_arms + tanh_arms
    table = np.stack([f for a in arms for f in a.flags], axis=1)  # (images, evaluations of every rate of both nets)
    bounds = np.cumsum([0] + [len(a.flags) for a in arms])
    steps = [[e["step"] for e in a.evals] for a in arms]
    tanh_last = min((a.evals[-1]["step"] for a in tanh_arms if a.evals and not a.diverged), default=0)

    def statistic(rows: np.ndarray) -> float:
        errs = rows.mean(0)
        crossed = [next((s for s, e in zip(steps[i], errs[bounds[i]:bounds[i + 1]]) if e <= target), None)
                   for i in range(len(arms))]  # fmt: skip
        relu = min((s for s in crossed[: len(relu_arms)] if s is not None), default=None)
        tanh = min((s for s in crossed[len(relu_arms):] if s is not None), default=None)
        value = speedups(relu, tanh, tanh_last)["min_speedup"]
        return 0.0 if value is None else float(value)

    out = bootstrap("min_speedup", table, statistic, n_boot=n_boot, seed=seed)
    return {"min_speedup_se": out["min_speedup_se"], "min_speedup_ci": out["min_speedup_ci"]}


def _outcome(metrics: dict) -> str:
    if not metrics["relu_reached"]:
        upper = metrics.get("speedup_upper_bound")
        then = f" (tanh did, at step {metrics['tanh_steps']}: below {upper:.2f}x)" if upper is not None else ""
        return f"ReLU never reached the target at any rate{then}, so there is no speedup to measure"
    if metrics["speedup"] is not None:
        return f"tanh needed {metrics['speedup']:.1f}x ReLU's steps"
    return (f"tanh did not reach it at any rate in {metrics['speedup_lower_bound']:.1f}x ReLU's steps (a lower bound "
            "on the speedup)")

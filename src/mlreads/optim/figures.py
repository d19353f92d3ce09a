"""Figures of the Adam and Sophia experiments, re-drawn from our runs: training cost per optimiser (Adam Figs 1-2),
loss vs step size with and without bias correction (Adam Fig 4), Reddi's counterexample, Sophia's 2-D toy (Fig 2)
and the char-LM comparison of separate runs per step budget (Sophia Fig 4)."""

from __future__ import annotations

import math

import matplotlib.pyplot as plt
import numpy as np

from mlreads.core.figures import curves


def training_cost(series: dict, title: str):
    """Training cost against epochs, one line per optimiser (its best or standard lr)."""
    return curves(series, xlabel="epochs (passes over the training subset)", ylabel="training cost (nats)",
                  title=title, logy=True)  # fmt: skip


def bias_correction(finals: dict, beta2s, lrs, epochs: int, check_lr: float, gap, excess):
    """Fig 4: loss after training against log10(alpha), for each beta_2, with (solid) and without (dashed) bias
    correction; diverged runs are drawn at the top edge with an x. The title states what the run measured at
    `check_lr`: the corrected largest-beta_2 run against the smallest (`gap`) and the uncorrected against the
    corrected at the largest (`excess`, 1e9 for a diverged run). With a single step size the series are spread a
    little along x, so no marker hides another."""
    fig, ax = plt.subplots(figsize=(8.6, 4.2))  # the legend sits right of the axes
    finite = [v for v in finals.values() if math.isfinite(v)]
    top = max(finite) * 1.05 if finite else 1.0
    n = 2 * len(beta2s)
    for i, b2 in enumerate(beta2s):
        for j, (corr, style) in enumerate(((True, "o-"), (False, "s--"))):
            dodge = 0.04 * (2 * i + j - (n - 1) / 2) if len(lrs) == 1 else 0.0
            ys = [finals[(b2, lr, corr)] for lr in lrs]
            xs = [math.log10(lr) + dodge for lr in lrs]
            ax.plot(xs, [y if math.isfinite(y) else np.nan for y in ys], style, color=f"C{i}",
                    ms=4 if corr else 7, mfc=None if corr else "none",
                    label=f"beta2 = {b2:g}, {'with' if corr else 'without'} bias correction")  # fmt: skip
            bad = [x for x, y in zip(xs, ys) if not math.isfinite(y)]
            if bad:
                ax.plot(bad, [top] * len(bad), "x", color=f"C{i}", ms=9, label=f"beta2 = {b2:g}: diverged")
    if len(lrs) == 1:
        ax.set_xlim(math.log10(lrs[0]) - 0.04 * n, math.log10(lrs[0]) + 0.04 * n)
        ax.set_xticks([math.log10(lrs[0])], [f"{math.log10(lrs[0]):.2f}"])
        ax.set_xlabel(f"log10(step size alpha) = {math.log10(lrs[0]):.2f} (series spread apart to stay visible)")
    else:
        ax.set_xlabel("log10(step size alpha)")
    ax.set_ylabel(f"-ELBO after {epochs} epochs (nats, log scale)")
    ax.set_yscale("log")
    hi, lo = max(beta2s), min(beta2s)
    gap_text = "unmeasured" if gap is None else f"{100 * gap:+.1f}%"
    excess_text = ("diverged" if excess is not None and excess >= 1e8 else
                   "unmeasured" if excess is None else f"{100 * excess:+.0f}%")  # fmt: skip
    ax.set_title(f"alpha = {check_lr:g}: corrected beta2 {hi:g} vs {lo:g} {gap_text};\n"
                 f"uncorrected vs corrected at {hi:g}: {excess_text}", fontsize=9)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.tight_layout()
    return fig


def regret(runs: dict):
    """Reddi et al.'s counterexample: the iterate x_t (left) and the average regret R_t / t (right)."""
    fig, (a0, a1) = plt.subplots(1, 2, figsize=(10, 4))
    for i, (name, (xs, rs)) in enumerate(runs.items()):
        t = np.arange(1, len(xs) + 1)
        a0.plot(t, xs, color=f"C{i}", lw=0.8, label=name)
        a1.plot(t, rs, color=f"C{i}", lw=1.0, label=name)
    a0.axhline(-1, color="gray", ls="--", lw=0.8, label="optimum x* = -1")
    a0.set_xscale("log")
    a0.set_xlabel("online step t")
    a0.set_ylabel("iterate x_t")
    a0.set_title("Adam drifts to the worst point x = +1")
    a1.set_xscale("log")
    a1.set_xlabel("online step t")
    a1.set_ylabel("average regret R_t / t")
    a1.set_title("Thm 4.1 predicts R_t / t -> 0")
    for ax in (a0, a1):
        ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def toy_2d(loss_fn, paths: dict, minimum, start):
    """Sophia Fig 2: the loss contours with each optimiser's trajectory from the same start."""
    fig, ax = plt.subplots(figsize=(6.4, 4.8))
    g1 = np.linspace(-1.2, 1.6, 300)
    g2 = np.linspace(-1.0, 5.0, 300)
    A, B = np.meshgrid(g1, g2)
    Z = loss_fn(A, B)
    cs = ax.contourf(A, B, np.log10(Z - Z.min() + 1e-3), levels=30, cmap="viridis")
    fig.colorbar(cs, ax=ax, label="log10(L - min L + 1e-3)")
    for i, (name, path) in enumerate(paths.items()):
        p = np.asarray(path)
        ax.plot(p[:, 0], p[:, 1], ".-", color=f"C{i + 1}", lw=1, ms=2, label=name)
    ax.plot(*minimum, "w*", ms=14, label="global minimum")
    ax.plot(*start, "ko", ms=6, label="start")
    ax.set_xlabel("theta[1] (sharp, non-convex: L1)")
    ax.set_ylabel("theta[2] (flat: L2)")
    ax.set_title("heterogeneous curvature: trajectories of the first steps")
    ax.legend(fontsize=7, loc="upper left")
    fig.tight_layout()
    return fig


def sophia_budgets(finals: dict, adamw_steps: int, out: dict):
    """Sophia Fig 4's comparison at our scale: the final validation loss of each separate run against its step
    budget, one point per peak lr, a line through each optimiser's best; AdamW's best as the dashed target. The
    title gives the measured gaps at each Sophia budget."""
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for opt, color, marker in (("adamw", "C0", "o"), ("sophia", "C3", "s")):
        budgets = sorted(T for o, T in finals if o == opt)
        for T in budgets:
            for lr, v in finals[(opt, T)].items():
                ax.scatter([T], [float(v.mean())], color=color, marker=marker, s=18, alpha=0.6)
                ax.annotate(f"{lr:g}", (T, float(v.mean())), fontsize=6, xytext=(3, 0), textcoords="offset points")
        best = [min(float(v.mean()) for v in finals[(opt, T)].values()) for T in budgets]
        ax.plot(budgets, best, "-", marker=marker, color=color, label=f"{'AdamW' if opt == 'adamw' else 'Sophia-G'} "
                "(best lr per budget)")  # fmt: skip
    ax.axhline(out["val_adamw"], color="C0", ls="--", lw=0.8,
               label=f"AdamW, {adamw_steps} steps: {out['val_adamw']:.3f}")  # fmt: skip
    ax.set_xlabel("steps (each run with its own full schedule)")
    ax.set_ylabel("final validation loss (nats / char)")
    gaps = [f"{T} steps {out[f'gap_{T}']:+.3f} (+- {2 * out[f'gap_{T}_se']:.3f})"
            for T in sorted(T for o, T in finals if o == "sophia")]  # fmt: skip
    ax.set_title(f"Sophia-G minus AdamW ({adamw_steps} steps): " + "; ".join(gaps), fontsize=8)
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def training_loss(series: dict, title: str):
    """Minibatch training loss against steps, one line per run."""
    return curves(series, xlabel="step", ylabel="training loss (nats / char)", title=title)

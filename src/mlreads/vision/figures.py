"""Plots of the vision experiments: ResNet Figs 1/6/7, AlexNet Fig 1 (and its rate search) and Fig 4."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np


def _plt():
    import matplotlib.pyplot as plt

    return plt


def degradation_figure(histories: Mapping[str, Sequence[Mapping]], shallow: int, deep: int, dataset: str,
                       metrics: Mapping[str, float]):  # fmt: skip
    """ResNet Fig 1/6: training error (thin dashed) and test error (bold) against steps, plain left, ResNet right;
    each panel's title gives the measured deep-minus-shallow training error (`degradation_pp_<kind>`, its s.e.)."""
    plt = _plt()
    fig, axes = plt.subplots(1, 2, figsize=(10, 4), sharey=True)
    for ax, kind, title in zip(axes, ("plain", "resnet"), ("plain nets", "ResNets")):
        for i, depth in enumerate((shallow, deep)):
            rows = [r for r in histories[f"{kind}-{depth}"] if "train_err" in r]
            steps = [r["step"] for r in rows]
            ax.plot(steps, [100 * r["train_err"] for r in rows], "--", color=f"C{i}", lw=1,
                    label=f"{kind}-{depth} train")  # fmt: skip
            ax.plot(steps, [100 * r["test_err"] for r in rows], "-", color=f"C{i}", lw=2, label=f"{kind}-{depth} test")
        ax.set_xlabel("training step")
        gap, se = metrics[f"degradation_pp_{kind}"], metrics[f"degradation_pp_{kind}_se"]
        ax.set_title(f"{title} on {dataset}:\n{kind}-{deep} minus {kind}-{shallow} training error "
                     f"{gap:+.1f} pp (+- {2 * se:.1f})", fontsize=9)
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("error (%)")
    fig.tight_layout()
    return fig


def responses_figure(responses: Mapping[str, Sequence[float]], ratio_shallow: float, ratio_deep: float):
    """ResNet Fig 7: std of each 3x3 layer's response (BN output), in depth order (top) and sorted (bottom); the
    title gives each ResNet's mean response std over its plain twin's."""
    plt = _plt()
    fig, axes = plt.subplots(2, 1, figsize=(7, 6))
    for i, (name, stds) in enumerate(responses.items()):
        style = "-" if name.startswith("resnet") else "--"
        axes[0].plot(range(1, len(stds) + 1), stds, style, color=f"C{i}", label=name)
        axes[1].plot(range(1, len(stds) + 1), sorted(stds, reverse=True), style, color=f"C{i}", label=name)
    axes[0].set_xlabel("layer index (original order)")
    axes[1].set_xlabel("layer index (sorted by magnitude)")
    for ax in axes:
        ax.set_ylabel("std of response")
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
    axes[0].set_title(f"mean response std, ResNet / plain: {ratio_shallow:.2f} (shallow), {ratio_deep:.2f} (deep)",
                      fontsize=9)
    fig.tight_layout()
    return fig


def steps_to_target_figure(histories: Mapping[str, Sequence[Mapping]], target: float, steps_per_epoch: float,
                           outcome: str, linear_err: float | None = None):  # fmt: skip
    """AlexNet Fig 1: training error against epochs for ReLU and tanh, with the target error as a dotted line and
    the linear model's training error (when given) as a dashed one; the title is the run's `outcome`."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6.4, 4))
    for i, (name, hist) in enumerate(histories.items()):
        rows = [r for r in hist if "train_err" in r]
        ax.plot([r["step"] / steps_per_epoch for r in rows], [100 * r["train_err"] for r in rows], "o-" if i == 0
                else "s--", ms=3, color=f"C{i}", label=name)  # fmt: skip
    ax.axhline(100 * target, color="gray", ls=":", label=f"target {100 * target:.1f}% training error")
    if linear_err is not None:
        ax.axhline(100 * linear_err, color="gray", ls="--", lw=0.8,
                   label=f"softmax regression {100 * linear_err:.1f}%")  # fmt: skip
    return _finish(fig, ax, "epochs", "training error (%)", outcome, legend_size=8)


def rate_search_figure(races: Mapping[str, Sequence], title: str):
    """AlexNet Fig 1's rate choice: each net's steps to the target at each learning rate raced (objects with `lr`,
    `steps`, `evals`, `diverged`); filled: crossed; open triangle: stopped at that step without crossing; x:
    diverged (drawn at the top)."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6.4, 3.6))
    top = max([a.evals[-1]["step"] for arms in races.values() for a in arms if a.evals] or [1])
    for i, (name, arms) in enumerate(races.items()):
        arms = sorted(arms, key=lambda a: a.lr)
        kinds = {"crossed": ("o", "full", [(a.lr, a.steps) for a in arms if a.steps is not None]),
                 "not crossed by this step": ("^", "none", [(a.lr, a.evals[-1]["step"]) for a in arms
                                                            if a.steps is None and not a.diverged and a.evals]),
                 "diverged": ("x", "full", [(a.lr, top) for a in arms if a.diverged])}  # fmt: skip
        for label, (marker, fill, points) in kinds.items():
            if points:
                ax.plot(*zip(*points), marker, fillstyle=fill, color=f"C{i}", ms=8, ls="none", label=f"{name}: {label}")
    rates = sorted({a.lr for arms in races.values() for a in arms})
    ax.set_xscale("log")
    ax.set_xticks(rates, [f"{r:g}" for r in rates])
    ax.minorticks_off()
    return _finish(fig, ax, "learning rate", "steps to the target", title, legend_size=7)


def _finish(fig, ax, xlabel: str, ylabel: str, title: str, legend_size: int):
    """The AlexNet Fig 1 panels' labels, title (what the run shows), legend and grid."""
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=8)
    ax.legend(fontsize=legend_size)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def neighbours_figure(queries: np.ndarray, feat_nn: np.ndarray, pix_nn: np.ndarray, side: int, title: str):
    """AlexNet Fig 4: each query image (left), its nearest training images in fc7 space, then in pixel space; the
    title says what the run measured."""
    plt = _plt()
    n_q, k = feat_nn.shape[0], feat_nn.shape[1]
    fig, axes = plt.subplots(n_q, 2 * k + 1, figsize=(1.0 * (2 * k + 1), 1.05 * n_q))
    for r in range(n_q):
        row = [queries[r]] + list(feat_nn[r]) + list(pix_nn[r])
        for c, img in enumerate(row):
            ax = axes[r, c]
            ax.imshow(img.reshape(side, side), cmap="gray_r")
            ax.set_xticks([])
            ax.set_yticks([])
        axes[r, 0].set_ylabel(f"query {r}", fontsize=7)
    axes[0, 0].set_title("query", fontsize=8)
    axes[0, 1].set_title(f"{k} nearest in fc7 space", fontsize=8, loc="left")
    axes[0, k + 1].set_title(f"{k} nearest in pixel space", fontsize=8, loc="left")
    fig.suptitle(title, fontsize=8)
    fig.tight_layout()
    return fig

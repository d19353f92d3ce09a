"""The curves every paper draws: losses and accuracies against steps, tokens or sequence length.

Each function takes plain sequences and returns a matplotlib Figure for `ctx.savefig`. A series with one point is
drawn as a marker, never as an invisible one-point line; every axis is labelled.

    series = {"mamba": (steps, values), "transformer": (steps, values)}
    fig = curves(series, xlabel="step", ylabel="val loss (nats / char)", refs={"unigram entropy": 3.3})
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

Series = tuple[Sequence[float], Sequence[float]]
REF_STYLES = (("--", "0.45"), (":", "0.2"), ("-.", "0.55"), ((0, (6, 2, 1, 2, 1, 2)), "0.3"))  # reference lines


def _plt():
    import matplotlib.pyplot as plt

    return plt


def draw(ax, xs: Sequence[float], ys: Sequence[float], label: str, style: str = "o-", **kwargs) -> None:
    """One series on `ax`: markers always drawn when there are few points (a single point stays visible)."""
    if len(xs) <= 1 and "-" in style:
        style = style.replace("-", "") or "o"
    ms = kwargs.pop("ms", 3 if len(xs) > 1 else 6)
    ax.plot(list(xs), list(ys), style, ms=ms, label=label, **kwargs)


def curves(
    series: Mapping[str, Series],
    *,
    xlabel: str,
    ylabel: str,
    title: str = "",
    refs: Mapping[str, float] | None = None,
    vrefs: Mapping[str, float] | None = None,
    logx: bool | int = False,
    logy: bool = False,
    ylim: tuple[float, float] | None = None,
    figsize: tuple[float, float] = (6.4, 4.0),
):
    """Lines of y against x, one per series; `refs` are labelled horizontal lines (baselines, chance), `vrefs`
    vertical ones (a training length). `logx=2` uses a base-2 log axis."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=figsize)
    for i, (name, (xs, ys)) in enumerate(series.items()):
        draw(ax, xs, ys, name, color=f"C{i}")
    if logx:
        ax.set_xscale("log", base=2 if logx == 2 else 10)
    if logy:
        ax.set_yscale("log")
    if ylim is not None:
        ax.set_ylim(*ylim)
    return _finish(fig, ax, xlabel, ylabel, title, refs, vrefs)


def _finish(fig, ax, xlabel: str, ylabel: str, title: str, refs: Mapping[str, float] | None = None,
            vrefs: Mapping[str, float] | None = None):
    """Reference lines, axis labels, title and legend: the end of every figure here."""
    for (name, y), (ls, gray) in zip((refs or {}).items(), REF_STYLES * 2, strict=False):
        ax.axhline(y, color=gray, ls=ls, lw=0.9, label=name)  # each its own style: two are never confused
    for (name, x), (ls, gray) in zip((vrefs or {}).items(), REF_STYLES[::-1] * 2, strict=False):
        ax.axvline(x, color=gray, ls=ls, lw=1.0, label=name)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def loss_curves(
    runs: Mapping[str, Sequence[Mapping]],
    *,
    eval_keys: Sequence[str] = ("val_loss",),
    x_scale: float = 1.0,
    xlabel: str = "step",
    ylabel: str = "loss (nats / token)",
    title: str = "",
    refs: Mapping[str, float] | None = None,
):
    """Training curves from `fit` histories (`TrainResult.history`), one colour per run: the logged batch-mean
    training loss as a thin line, and each of `eval_keys` as markers. `x_scale` turns steps into another unit
    (tokens per step / 1e6 for "millions of tokens")."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6.4, 4.0))
    styles = ("o-", "s-", "^-", "d-")
    for i, (name, history) in enumerate(runs.items()):
        prefix = f"{name}: " if len(runs) > 1 else ""
        rows = [r for r in history if "loss" in r]
        ax.plot([x_scale * r["step"] for r in rows], [r["loss"] for r in rows], color=f"C{i}", lw=0.8, alpha=0.5,
                label=f"{prefix}train (batch mean)")  # fmt: skip
        for key, style in zip(eval_keys, styles, strict=False):
            rows = [r for r in history if key in r]
            label = f"{prefix}{key.removesuffix('_loss').replace('_', ' ')} (fixed evaluation windows)"
            draw(ax, [x_scale * r["step"] for r in rows], [r[key] for r in rows], label, style, color=f"C{i}")
    return _finish(fig, ax, xlabel, ylabel, title, refs)


def accuracy_curves(
    series: Mapping[str, Series],
    *,
    chance: float | None = None,
    xlabel: str = "step",
    title: str = "",
    vrefs: Mapping[str, float] | None = None,
    logx: bool | int = False,
    figsize: tuple[float, float] = (6.4, 4.0),
):
    """Accuracy in percent against steps or lengths; `series` values are fractions in [0, 1]."""
    pct = {name: (xs, [100 * v for v in ys]) for name, (xs, ys) in series.items()}
    refs = {"chance": 100 * chance} if chance is not None else None
    return curves(pct, xlabel=xlabel, ylabel="accuracy (%)", title=title, refs=refs, vrefs=vrefs, logx=logx,
                  ylim=(-2, 102), figsize=figsize)  # fmt: skip

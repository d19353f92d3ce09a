"""Paper-style figures for the toy-model experiments (Elhage et al. 2022, arXiv 2209.10652).

Each function takes plain tensors and returns a matplotlib Figure; the experiment hands it to ctx.savefig. Every axis
is labelled and every heatmap has a colour bar.
"""

from __future__ import annotations

from fractions import Fraction

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.colors import ListedColormap, Normalize
from matplotlib.ticker import MaxNLocator
from torch import Tensor

from mlreads.superposition.measures import (
    PHASES,
    STICKY_FRACTIONS,
    feature_norms,
    superposition,
)

WTW_RANGE = 1.3  # W^T W heatmaps share the colour scale [-1.3, 1.3]


def _wtw_heatmap(ax, W: Tensor):
    """W^T W (n, n) of one model: entry (i, j) = W_i . W_j; returns the image for a colour bar."""
    n = W.shape[1]
    im = ax.imshow((W.T @ W).numpy(), cmap="RdBu", vmin=-WTW_RANGE, vmax=WTW_RANGE)  # (n, n)
    ticks = [0, n - 1] if n > 6 else list(range(n))
    ax.set_xticks(ticks)
    ax.set_yticks(ticks)
    ax.tick_params(labelsize=6)
    ax.set_xlabel("feature j", fontsize=7)
    ax.set_ylabel("feature i", fontsize=7)
    return im


def intro_figure(Ws: Tensor, densities: list[float], importance_decay: float) -> plt.Figure:
    """Section 1 figure: W^T W (top) and the 2D feature vectors W_i coloured by importance (bottom). Ws (G, 2, n)."""
    G, n = Ws.shape[0], Ws.shape[-1]
    fig, axes = plt.subplots(2, G, figsize=(2.9 * G + 1.0, 5.8), squeeze=False, layout="constrained")
    cmap = plt.cm.viridis
    norm = Normalize(vmin=importance_decay ** (n - 1), vmax=1.0)
    for g in range(G):
        W = Ws[g]
        im = _wtw_heatmap(axes[0, g], W)
        axes[0, g].set_title(f"1-S = {densities[g]:g}", fontsize=9)
        ax = axes[1, g]
        for i in range(n):
            color = cmap(norm(importance_decay**i))
            ax.plot([0, W[0, i]], [0, W[1, i]], color=color, lw=2)
            ax.scatter([W[0, i]], [W[1, i]], color=color, s=12)
        ax.set_xlim(-1.5, 1.5)
        ax.set_ylim(-1.5, 1.5)
        ax.set_aspect("equal")
        ax.tick_params(labelsize=6)
        ax.set_xlabel("hidden dim 1", fontsize=7)
        ax.set_ylabel("hidden dim 2", fontsize=7)
    fig.colorbar(im, ax=axes[0, :].tolist(), shrink=0.8, label="W_i . W_j")
    fig.colorbar(plt.cm.ScalarMappable(norm=norm, cmap=cmap), ax=axes[1, :].tolist(), shrink=0.8,
                 label=f"importance {importance_decay:g}^i")  # fmt: skip
    fig.suptitle(f"n={n} features in m=2 dims: dense keeps 2 (orthogonal); sparse packs all {n} (a pentagon)")
    return fig


def sweep_figure(rows: dict[str, Tensor], densities: list[float]) -> plt.Figure:
    """Section 3 figure: for each model and density, W^T W and the bars of ||W_i|| coloured by superposition."""
    G = len(densities)
    fig, axes = plt.subplots(2 * len(rows), G, figsize=(2.3 * G + 1.2, 4.6 * len(rows)), squeeze=False,
                             layout="constrained")  # fmt: skip
    cmap = plt.cm.plasma
    for r, (name, Ws) in enumerate(rows.items()):
        for g in range(G):
            W = Ws[g]
            im = _wtw_heatmap(axes[2 * r, g], W)
            axes[2 * r, g].set_title(f"{name}, 1-S = {densities[g]:g}", fontsize=8)
            norms, sup = feature_norms(W).numpy(), superposition(W).clamp(0, 1).numpy()
            ax = axes[2 * r + 1, g]
            ax.barh(np.arange(len(norms)), norms, color=cmap(sup))
            ax.set_yticks(list(range(0, len(norms), 5)) if len(norms) > 6 else list(range(len(norms))))
            ax.invert_yaxis()
            ax.set_xlim(0, 1.3)
            ax.tick_params(labelsize=6)
            ax.set_xlabel("||W_i||", fontsize=7)
            ax.set_ylabel("feature i (importance falls)", fontsize=7)
    fig.colorbar(im, ax=axes.flatten().tolist(), location="right", shrink=0.4, label="heatmaps: W_i . W_j")
    fig.colorbar(plt.cm.ScalarMappable(norm=Normalize(0, 1), cmap=cmap), ax=axes.flatten().tolist(),
                 location="bottom", shrink=0.6, aspect=40,
                 label="bars: superposition of feature i, sum_j (W^_i . W_j)^2 (0: a direction of its own)")  # fmt: skip
    fig.suptitle("Linear keeps m features; ReLU packs more, in superposition, as sparsity rises")
    return fig


def phase_figure(phases: Tensor, rel_importance: Tensor, densities: Tensor) -> plt.Figure:
    """Section 4 figure: the fate of the extra feature over relative importance (x) and density (y)."""
    fig, ax = plt.subplots(figsize=(5.5, 4.8))
    cmap = ListedColormap(["#4c72b0", "#dd8452", "#55a868"])
    x, y = rel_importance.log10().numpy(), densities.log10().numpy()
    ax.pcolormesh(x, y, phases.numpy(), cmap=cmap, vmin=-0.5, vmax=2.5, shading="nearest")
    ax.set_xlabel("relative importance of the extra feature (log10)")
    ax.set_ylabel("feature density 1-S (log10)")
    handles = [plt.Rectangle((0, 0), 1, 1, color=cmap(k)) for k in range(3)]
    ax.legend(handles, PHASES, loc="upper center", bbox_to_anchor=(0.5, -0.12), ncol=3, fontsize=7)
    ax.set_title("n=2, m=1: superposition takes the sparse, comparable-importance corner", fontsize=9)
    return fig


def dimensionality_figure(inv_density: Tensor, dims: Tensor, dpf: Tensor, band: float,
                          dpf_used: Tensor | None = None) -> plt.Figure:  # fmt: skip
    """Section 6 figure: D_i of every feature against 1/(1-S), the sticky fractions as labelled lines, and
    m/||W||_F^2 (and, given, the same over the dimensions in use) with the +-band around 1/2 that the check uses."""
    fig, ax = plt.subplots(figsize=(7.5, 4.8))
    x_max = float(inv_density.max())
    for k, frac in enumerate(STICKY_FRACTIONS):
        ax.axhline(frac, color="0.85", lw=1, zorder=0)
        # pairs that lie close (3/4 & 2/3, 2/5 & 3/8): one label above its line, the other below, so none overlap
        below = frac in (2 / 3, 3 / 8)
        ax.annotate(str(Fraction(frac).limit_denominator(8)), (1.0, frac), xycoords=("axes fraction", "data"),
                    xytext=(4, -2 if below else 2), textcoords="offset points", va="top" if below else "bottom",
                    fontsize=8, color="0.4")  # fmt: skip
    ax.axhspan(0.5 - band, 0.5 + band, color="C1", alpha=0.15, lw=0, label=f"1/2 +- {band:g} (the check's band)")
    xs = inv_density[:, None].expand_as(dims)
    ax.scatter(xs.flatten(), dims.flatten(), s=3, alpha=0.3, color="#4c72b0", label="D_i (one dot per feature)")
    ax.plot(inv_density, dpf, "k.-", lw=1.5, ms=5, label="m / ||W||_F^2")
    if dpf_used is not None:
        ax.plot(inv_density, dpf_used, ".-", color="C1", lw=1.5, ms=5, label="dimensions in use / ||W||_F^2")
    ax.set_xscale("log")
    ax.set_xlim(float(inv_density.min()) / 1.05, x_max * 1.05)
    ax.set_xlabel("1 / (1 - S)   (sparser to the right)")
    ax.set_ylabel("dimensions per feature")
    ax.set_ylim(-0.05, 1.1)
    ax.legend(fontsize=7, loc="upper right")
    ax.set_title("Feature dimensionality sticks at the fractions of regular polytopes", fontsize=10)
    fig.tight_layout()
    return fig


def abs_figure(W_ins: Tensor, densities: list[float], fpn: list[float]) -> plt.Figure:
    """Section 8 figure: neuron-by-feature weights W_1 across sparsities (neurons sorted by their top feature)."""
    G = W_ins.shape[0]
    fig, axes = plt.subplots(1, G, figsize=(2.8 * G + 1.0, 3.6), squeeze=False, layout="constrained")
    axes = axes[0]
    for g in range(G):
        W = W_ins[g]  # (H, F)
        order = torch.argsort(W.abs().argmax(dim=1) * 10 + (W.abs().max(dim=1).values < 0.1))
        im = axes[g].imshow(W[order].numpy(), cmap="RdBu", vmin=-2, vmax=2, aspect="auto")
        axes[g].set_title(f"1-S = {densities[g]:g}\n{fpn[g]:.2f} features/neuron", fontsize=8)
        axes[g].set_xlabel("input feature")
        axes[g].set_ylabel("neuron (sorted by top feature)", fontsize=7)
        axes[g].tick_params(labelsize=6)
        axes[g].xaxis.set_major_locator(MaxNLocator(integer=True))
        axes[g].yaxis.set_major_locator(MaxNLocator(integer=True))
    fig.colorbar(im, ax=list(axes), shrink=0.8, label="W_1 weight")
    fig.suptitle("|x| in superposition: W_1 goes from monosemantic (dense) to polysemantic (sparse)")
    return fig

"""Paper-style figures for the toy-model experiments (Elhage et al. 2022, arXiv 2209.10652).

Each function takes plain tensors and returns a matplotlib Figure; the experiment hands it to ctx.savefig.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import torch
from torch import Tensor

from mlreads.superposition.analysis import PHASES, STICKY_FRACTIONS, feature_norms, superposition


def _wtw_heatmap(ax, W: Tensor) -> None:
    ax.imshow((W.T @ W).numpy(), cmap="RdBu", vmin=-1.3, vmax=1.3)  # (n, n)
    ax.set_xticks([])
    ax.set_yticks([])


def intro_figure(Ws: Tensor, densities: list[float], importance: Tensor) -> plt.Figure:
    """Section 1 figure: W^T W (top) and the 2D feature vectors W_i coloured by importance (bottom). Ws (G, 2, n)."""
    G = Ws.shape[0]
    fig, axes = plt.subplots(2, G, figsize=(2.6 * G, 5.4))
    colors = plt.cm.viridis(np.linspace(0, 0.9, Ws.shape[-1]))
    for g in range(G):
        W = Ws[g]
        _wtw_heatmap(axes[0, g], W)
        axes[0, g].set_title(f"1-S = {densities[g]:g}")
        ax = axes[1, g]
        for i in range(W.shape[1]):
            ax.plot([0, W[0, i]], [0, W[1, i]], color=colors[i], lw=2)
            ax.scatter([W[0, i]], [W[1, i]], color=colors[i], s=12)
        ax.set_xlim(-1.5, 1.5)
        ax.set_ylim(-1.5, 1.5)
        ax.set_aspect("equal")
        ax.set_xticks([])
        ax.set_yticks([])
    axes[0, 0].set_ylabel("W^T W")
    axes[1, 0].set_ylabel("columns W_i (colour: importance)")
    fig.suptitle("n=5 features in m=2 dims, importance 0.9^i: dense keeps 2, sparse packs a pentagon")
    return fig


def sweep_figure(rows: dict[str, Tensor], densities: list[float]) -> plt.Figure:
    """Section 3 figure: for each model and density, W^T W and the bars of ||W_i|| coloured by superposition."""
    G = len(densities)
    fig, axes = plt.subplots(2 * len(rows), G, figsize=(2.1 * G, 4.2 * len(rows)))
    cmap = plt.cm.plasma
    for r, (name, Ws) in enumerate(rows.items()):
        for g in range(G):
            W = Ws[g]
            _wtw_heatmap(axes[2 * r, g], W)
            axes[2 * r, g].set_title(f"{name}\n1-S = {densities[g]:g}", fontsize=8)
            norms, sup = feature_norms(W).numpy(), superposition(W).clamp(0, 1).numpy()
            ax = axes[2 * r + 1, g]
            ax.barh(np.arange(len(norms)), norms, color=cmap(sup))
            ax.invert_yaxis()
            ax.set_xlim(0, 1.3)
            ax.set_yticks([])
            ax.tick_params(labelsize=6)
    fig.suptitle("W^T W and ||W_i|| (colour: superposition, dark = none, yellow = shared)")
    fig.subplots_adjust(hspace=0.45)
    return fig


def phase_figure(phases: Tensor, rel_importance: Tensor, densities: Tensor) -> plt.Figure:
    """Section 4 figure: the fate of the extra feature over relative importance (x) and density (y)."""
    from matplotlib.colors import ListedColormap

    fig, ax = plt.subplots(figsize=(5.5, 4.8))
    cmap = ListedColormap(["#4c72b0", "#dd8452", "#55a868"])
    x, y = rel_importance.log10().numpy(), densities.log10().numpy()
    ax.pcolormesh(x, y, phases.numpy(), cmap=cmap, vmin=-0.5, vmax=2.5, shading="nearest")
    ax.set_xlabel("relative importance of the extra feature (log10)")
    ax.set_ylabel("feature density 1-S (log10)")
    handles = [plt.Rectangle((0, 0), 1, 1, color=cmap(k)) for k in range(3)]
    ax.legend(handles, PHASES, loc="upper center", bbox_to_anchor=(0.5, -0.12), ncol=3, fontsize=7)
    ax.set_title("n=2, m=1: what happens to the extra feature")
    return fig


def dimensionality_figure(inv_density: Tensor, dims: Tensor, dpf: Tensor) -> plt.Figure:
    """Section 6 figure: D_i of every feature against 1/(1-S), sticky fractions as lines, and m/||W||_F^2."""
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for frac in STICKY_FRACTIONS:
        ax.axhline(frac, color="0.85", lw=1, zorder=0)
        ax.text(inv_density.max() * 1.05, frac, f"{frac:.3g}", va="center", fontsize=7)
    xs = inv_density[:, None].expand_as(dims)
    ax.scatter(xs.flatten(), dims.flatten(), s=3, alpha=0.3, color="#4c72b0", label="D_i (one dot per feature)")
    ax.plot(inv_density, dpf, color="k", lw=1.5, label="m / ||W||_F^2")
    ax.set_xscale("log")
    ax.set_xlabel("1 / (1 - S)")
    ax.set_ylabel("dimensions per feature")
    ax.set_ylim(-0.05, 1.1)
    ax.legend(fontsize=7, loc="upper right")
    ax.set_title("feature dimensionality sticks at the fractions of regular polytopes")
    return fig


def abs_figure(W_ins: Tensor, densities: list[float], fpn: list[float]) -> plt.Figure:
    """Section 8 figure: neuron-by-feature weights W_1 across sparsities (neurons sorted by their top feature)."""
    G = W_ins.shape[0]
    fig, axes = plt.subplots(1, G, figsize=(2.6 * G, 3.2))
    for g in range(G):
        W = W_ins[g]  # (H, F)
        order = torch.argsort(W.abs().argmax(dim=1) * 10 + (W.abs().max(dim=1).values < 0.1))
        axes[g].imshow(W[order].numpy(), cmap="RdBu", vmin=-2, vmax=2, aspect="auto")
        axes[g].set_title(f"1-S = {densities[g]:g}\n{fpn[g]:.2f} features/neuron", fontsize=8)
        axes[g].set_xlabel("feature")
        axes[g].set_yticks([])
    axes[0].set_ylabel("neuron")
    fig.suptitle("abs(x) in superposition: W_1 goes from monosemantic to polysemantic", y=1.1)
    return fig

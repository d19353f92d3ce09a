"""Figures for the circuits experiments (matplotlib, Agg); each function returns a Figure for `ctx.savefig`."""

from __future__ import annotations

import numpy as np


def bigram_figure(model_table: np.ndarray, log_bigram: np.ndarray, mask: np.ndarray, labels: list[str], corr: float):
    """Side-by-side heat maps of the row-centred W_E W_U and log-bigram tables (most frequent tokens), and a scatter."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(15, 4.8))
    k = min(30, model_table.shape[0])
    labels = ["␣" if s == " " else repr(s)[1:-1] for s in labels]
    panels = ((axes[0], model_table, "W_E W_U (row-centred)"), (axes[1], log_bigram, "log p(next | cur) (row-centred)"))
    for ax, table, title in panels:
        shown = np.where(mask[:k, :k], table[:k, :k], np.nan)
        im = ax.imshow(shown, cmap="RdBu_r", vmin=-np.nanmax(np.abs(shown)), vmax=np.nanmax(np.abs(shown)))
        ax.set_title(title)
        ax.set_xticks(range(k), labels[:k], fontsize=6, rotation=90)
        ax.set_yticks(range(k), labels[:k], fontsize=6)
        ax.set_xlabel("next token")
        ax.set_ylabel("current token")
        fig.colorbar(im, ax=ax, shrink=0.8, label="row-centred log-probability (nats)")
    axes[2].scatter(log_bigram[mask], model_table[mask], s=3, alpha=0.4)
    axes[2].set_xlabel("log-bigram, row-centred")
    axes[2].set_ylabel("W_E W_U, row-centred")
    axes[2].set_title(f"every compared pair: correlation {corr:.3f}")
    fig.tight_layout()
    return fig


def copying_figure(scores: np.ndarray, eigenvalues: list[np.ndarray]):
    """Left: per-head copying scores (bars; dashed line: the 0.5 threshold). Right: each head's OV eigenvalues in the
    complex plane, one small panel per head, so that a copying head (eigenvalues mostly right of 0) reads at a glance."""
    import matplotlib.pyplot as plt

    H = len(scores)
    cols = min(4, H)
    rows = -(-H // cols)
    fig = plt.figure(figsize=(6 + 2.4 * cols, max(4.5, 2.3 * rows)))
    grid = fig.add_gridspec(rows, 1 + cols, width_ratios=[2.2] + [1] * cols)
    ax = fig.add_subplot(grid[:, 0])
    ax.bar(range(H), scores, color=["tab:blue" if s > 0.5 else "tab:gray" for s in scores])
    ax.axhline(0.5, color="k", ls="--", lw=0.8, label="copying threshold 0.5")
    ax.axhline(0, color="k", lw=0.5)
    ax.set_xticks(range(H), [f"0.{h}" for h in range(H)])
    ax.set_xlabel("head (layer.head)")
    ax.set_ylabel("copying score  Σλ / Σ|λ|")
    ax.set_ylim(-1.05, 1.05)
    ax.set_title("OV-circuit copying score per head\n(blue: copying, > 0.5)")
    ax.legend(fontsize=8, loc="lower right")
    for h, lam in enumerate(eigenvalues):
        sub = fig.add_subplot(grid[h // cols, 1 + h % cols])
        lam = lam / max(np.abs(lam).max(), 1e-30)
        pos = lam.real > 0
        sub.scatter(lam.real[pos], lam.imag[pos], s=5, color="tab:blue")
        sub.scatter(lam.real[~pos], lam.imag[~pos], s=5, color="tab:red")
        sub.axvline(0, color="k", lw=0.5)
        sub.axhline(0, color="k", lw=0.5)
        sub.set_xlim(-1.1, 1.1)
        sub.set_ylim(-1.1, 1.1)
        sub.set_aspect("equal")
        sub.set_title(f"head 0.{h}: score {scores[h]:+.2f}", fontsize=8)
        sub.tick_params(labelsize=6)
        sub.set_xlabel("Re λ / max|λ|", fontsize=7)
        sub.set_ylabel("Im λ / max|λ|", fontsize=7)
    fig.suptitle("eigenvalues λ of W_U W_OV W_E per head (blue: Re λ > 0, copying; red: Re λ < 0)", fontsize=10)
    fig.tight_layout()
    return fig


def patterns_figure(prev_pattern: np.ndarray, ind_pattern: np.ndarray, prev_name: str, ind_name: str, half: int):
    """Attention patterns (Lq, Lk) of the previous-token and induction heads on a random sequence repeated twice."""
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    fig, axes = plt.subplots(1, 2, figsize=(11.5, 5))
    for ax, pat, name in ((axes[0], prev_pattern, prev_name), (axes[1], ind_pattern, ind_name)):
        im = ax.imshow(pat, cmap="viridis", vmin=0, vmax=1)
        ax.axhline(half - 0.5, color="w", lw=0.6)
        ax.axvline(half - 0.5, color="w", lw=0.6)
        ax.set_title(name)
        ax.set_xlabel("key position (token)")
        ax.set_ylabel("query position (token)")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
        fig.colorbar(im, ax=ax, shrink=0.8, label="attention weight")
    fig.suptitle("attention on a random sequence repeated twice (white lines: start of the repeat); a previous-token "
                 "head fills the sub-diagonal,\nan induction head the diagonal offset by the period - 1 in the second "
                 "repeat", fontsize=10)  # fmt: skip
    fig.tight_layout()
    return fig


def composition_figure(kcomp: np.ndarray, baseline: float, n_heads: int, title: str):
    """Heat map of K-composition scores from layer-0 heads (rows) into layer-1 heads (columns), values in the cells."""
    import matplotlib.pyplot as plt

    size = max(5.5, 0.7 * n_heads + 2.5)
    fig, ax = plt.subplots(figsize=(size, size * 0.82))
    vmax = max(float(kcomp.max()), 1e-12)
    im = ax.imshow(kcomp, cmap="Reds", vmin=0, vmax=vmax)
    fontsize = 9 if n_heads <= 6 else 7
    for i in range(kcomp.shape[0]):
        for j in range(kcomp.shape[1]):
            dark = kcomp[i, j] > 0.6 * vmax  # white text on dark cells, black on light ones
            ax.text(j, i, f"{kcomp[i, j]:.2f}", ha="center", va="center", fontsize=fontsize,
                    color="white" if dark else "black")  # fmt: skip
    ax.set_xticks(range(n_heads), [f"1.{h}" for h in range(n_heads)])
    ax.set_yticks(range(n_heads), [f"0.{h}" for h in range(n_heads)])
    ax.set_xlabel("layer-1 head (keys read)")
    ax.set_ylabel("layer-0 head (OV writes)")
    ax.set_title(f"{title}\ncells above the random-matrix baseline {baseline:.3f} compose beyond chance")
    fig.colorbar(im, ax=ax, label="K-composition score")
    fig.tight_layout()
    return fig


def phase_figure(curves: dict[str, dict[str, list]], rise_step: int | None = None, drop_step: int | None = None):
    """Loss on each repeat and the induction score over training, on one time axis (the phase change); the dotted
    lines mark the 2-layer model's steepest induction-score rise and steepest loss drop on the second repeat."""
    import matplotlib.pyplot as plt

    from mlreads.core.figures import draw

    fig, ax = plt.subplots(figsize=(8, 4.8))
    ax2 = ax.twinx()
    colors = {"2-layer": "tab:blue", "1-layer": "tab:orange"}
    for name, c in curves.items():
        col = colors.get(name, None)
        draw(ax, c["step"], c["loss_rep2"], f"{name}: loss on 2nd repeat", "o-", color=col)
        draw(ax, c["step"], c["loss_rep1"], f"{name}: loss on 1st repeat", "^:", color=col)
        if "loss_text" in c and any(v is not None for v in c["loss_text"]):
            draw(ax, c["step"], c["loss_text"], f"{name}: text val loss", "d--", color=col, alpha=0.6)
        draw(ax2, c["step"], c["induction"], f"{name}: max induction score", "s-", color=col, lw=2, alpha=0.7)
    if rise_step is not None:
        ax.axvline(rise_step, color="k", ls=":", lw=1.0, label=f"steepest induction rise (step {rise_step})")
    if drop_step is not None and drop_step != rise_step:
        ax.axvline(drop_step, color="gray", ls=":", lw=1.0, label=f"steepest 2nd-repeat loss drop (step {drop_step})")
    ax.set_xlabel("training step")
    ax.set_ylabel("loss (nats / token)")
    ax2.set_ylabel("induction (prefix-matching) score")
    ax2.set_ylim(0, 1.02)
    lines = ax.get_legend_handles_labels()
    lines2 = ax2.get_legend_handles_labels()
    ax.set_title("induction heads form in a phase change: the score rises as the 2nd-repeat loss drops")
    fig.tight_layout()
    # below the axes, never over the curves (both axes' curves span the whole width)
    ax.legend(lines[0] + lines2[0], lines[1] + lines2[1], fontsize=7, loc="upper center", ncol=2,
              bbox_to_anchor=(0.5, -0.14), frameon=False)  # fmt: skip
    return fig

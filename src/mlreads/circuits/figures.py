"""Figures for the circuits experiments (matplotlib, Agg); each function returns a Figure for `ctx.savefig`."""

from __future__ import annotations

import numpy as np


def bigram_figure(model_table: np.ndarray, log_bigram: np.ndarray, mask: np.ndarray, labels: list[str], corr: float):
    """Side-by-side heat maps of the row-centred W_E W_U and log-bigram tables (most frequent tokens), and a scatter."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(15, 4.8))
    k = min(30, model_table.shape[0])
    labels = ["␣" if s == " " else repr(s)[1:-1] for s in labels]
    for ax, table, title in ((axes[0], model_table, "W_E W_U (row-centred)"), (axes[1], log_bigram, "log p(next | cur) (row-centred)")):
        shown = np.where(mask[:k, :k], table[:k, :k], np.nan)
        im = ax.imshow(shown, cmap="RdBu_r", vmin=-np.nanmax(np.abs(shown)), vmax=np.nanmax(np.abs(shown)))
        ax.set_title(title)
        ax.set_xticks(range(k), labels[:k], fontsize=6, rotation=90)
        ax.set_yticks(range(k), labels[:k], fontsize=6)
        ax.set_xlabel("next token")
        ax.set_ylabel("current token")
        fig.colorbar(im, ax=ax, shrink=0.8)
    axes[2].scatter(log_bigram[mask], model_table[mask], s=3, alpha=0.4)
    axes[2].set_xlabel("log-bigram, row-centred")
    axes[2].set_ylabel("W_E W_U, row-centred")
    axes[2].set_title(f"correlation {corr:.3f}")
    fig.tight_layout()
    return fig


def copying_figure(scores: np.ndarray, eigenvalues: list[np.ndarray]):
    """Bar chart of per-head copying scores and each head's OV eigenvalues in the complex plane (paper's figure)."""
    import matplotlib.pyplot as plt

    H = len(scores)
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
    axes[0].bar(range(H), scores, color=["tab:blue" if s > 0.5 else "tab:gray" for s in scores])
    axes[0].axhline(0.5, color="k", ls="--", lw=0.8)
    axes[0].set_xlabel("head")
    axes[0].set_ylabel("copying score  sum(l) / sum(|l|)")
    axes[0].set_ylim(-1, 1)
    axes[0].set_title("1-layer model: OV-circuit copying scores")
    for h, lam in enumerate(eigenvalues):
        lam = lam / np.abs(lam).max()
        axes[1].scatter(lam.real, lam.imag, s=8, label=f"head {h}")
    axes[1].axvline(0, color="k", lw=0.5)
    axes[1].axhline(0, color="k", lw=0.5)
    axes[1].set_xlabel("Re(lambda) / max|lambda|")
    axes[1].set_ylabel("Im(lambda) / max|lambda|")
    axes[1].set_title("eigenvalues of W_U W_OV W_E per head")
    axes[1].legend(fontsize=6, ncol=2)
    fig.tight_layout()
    return fig


def patterns_figure(prev_pattern: np.ndarray, ind_pattern: np.ndarray, prev_name: str, ind_name: str, half: int):
    """Attention patterns of the previous-token and induction heads on a random sequence repeated twice."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 5))
    for ax, pat, name in ((axes[0], prev_pattern, prev_name), (axes[1], ind_pattern, ind_name)):
        ax.imshow(pat, cmap="viridis", vmin=0, vmax=1)
        ax.axhline(half - 0.5, color="w", lw=0.6)
        ax.axvline(half - 0.5, color="w", lw=0.6)
        ax.set_title(name)
        ax.set_xlabel("key position")
        ax.set_ylabel("query position")
    fig.suptitle("attention on a random sequence repeated twice (white lines: start of the repeat)")
    fig.tight_layout()
    return fig


def composition_figure(kcomp: np.ndarray, baseline: float, n_heads: int, title: str):
    """Heat map of K-composition scores from layer-0 heads (rows) into layer-1 heads (columns)."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 4.5))
    im = ax.imshow(kcomp, cmap="Reds", vmin=0)
    for i in range(kcomp.shape[0]):
        for j in range(kcomp.shape[1]):
            ax.text(j, i, f"{kcomp[i, j]:.2f}", ha="center", va="center", fontsize=7)
    ax.set_xticks(range(n_heads), [f"1.{h}" for h in range(n_heads)])
    ax.set_yticks(range(n_heads), [f"0.{h}" for h in range(n_heads)])
    ax.set_xlabel("layer-1 head (keys read)")
    ax.set_ylabel("layer-0 head (OV writes)")
    ax.set_title(f"{title}\nrandom-matrix baseline {baseline:.3f}")
    fig.colorbar(im, ax=ax)
    fig.tight_layout()
    return fig


def phase_figure(curves: dict[str, dict[str, list]]):
    """Loss on the second repeat and the induction score over training, on one time axis (the phase change)."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7.5, 4.5))
    ax2 = ax.twinx()
    colors = {"2-layer": "tab:blue", "1-layer": "tab:orange"}
    for name, c in curves.items():
        col = colors.get(name, None)
        ax.plot(c["step"], c["loss_rep2"], "-", color=col, label=f"{name}: loss on 2nd repeat")
        ax.plot(c["step"], c["loss_rep1"], ":", color=col, label=f"{name}: loss on 1st repeat")
        if "loss_text" in c and any(v is not None for v in c["loss_text"]):
            ax.plot(c["step"], c["loss_text"], "-.", color=col, alpha=0.6, label=f"{name}: text val loss")
        ax2.plot(c["step"], c["induction"], "--", color=col, lw=2, alpha=0.7, label=f"{name}: max induction score")
    ax.set_xlabel("training step")
    ax.set_ylabel("loss (nats / token)")
    ax2.set_ylabel("induction (prefix-matching) score")
    ax2.set_ylim(0, 1.02)
    lines = ax.get_legend_handles_labels()
    lines2 = ax2.get_legend_handles_labels()
    ax.legend(lines[0] + lines2[0], lines[1] + lines2[1], fontsize=7, loc="center right")
    ax.set_title("induction heads form in a phase change")
    fig.tight_layout()
    return fig

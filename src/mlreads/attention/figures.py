"""The attention package's figures: the kernel regression fit and its error against n, BLEU against sentence length
(Bahdanau Fig 2), and the alignment matrix (Fig 3)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt


def kernel_regression_figure(q, truth, x, y, fit, h, sizes, excess, slope):
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 3.8))
    a.plot(x, y, ".", ms=3, alpha=0.5, color="gray", label="training data")
    a.plot(q, truth, "k-", lw=1.5, label="true f(x) = 2 sin x + x^0.8")
    a.plot(q, fit, "C0-", lw=1.5, label=f"attention pooling (h = {h:.3f})")
    a.set_xlabel("x")
    a.set_ylabel("y")
    a.set_title("Nadaraya-Watson = softmax attention")
    a.legend(fontsize=8)
    b.loglog(sizes, excess, "o-", label=f"measured (slope {slope:.2f})")
    ref = [excess[0] * (n / sizes[0]) ** -0.8 for n in sizes]
    b.loglog(sizes, ref, "--", color="gray", label="n^-4/5 (theory)")
    b.set_xlabel("training points n")
    b.set_ylabel("excess error E[(f̂ - f)²]")
    b.set_title("consistency: the error falls with n")
    b.legend(fontsize=8)
    fig.tight_layout()
    return fig


def bleu_vs_length_figure(bins: Sequence[str], series: Mapping[str, Sequence[float]]):
    """Bahdanau Fig 2: BLEU per source-length bin, one line per model."""
    fig, ax = plt.subplots(figsize=(6.4, 4))
    xs = range(len(bins))
    for i, (name, vals) in enumerate(series.items()):
        ax.plot(xs, vals, "o-", color=f"C{i}", label=name)
    ax.set_xticks(list(xs), list(bins))
    ax.set_xlabel("source sentence length (words)")
    ax.set_ylabel("BLEU (greedy decoding)")
    ax.set_ylim(bottom=0)
    ax.set_title("BLEU against sentence length (cf. Bahdanau et al. Fig 2)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def alignment_figure(align, src_words: Sequence[str], tgt_words: Sequence[str], truth: Sequence[int]):
    """Bahdanau Fig 3: the attention weights α_ij, target words down, source words across; crosses mark the true
    alignment."""
    T, S = align.shape
    fig, ax = plt.subplots(figsize=(max(4, 0.35 * S + 2), max(3, 0.35 * T + 1.5)))
    im = ax.imshow(align, cmap="Greys", vmin=0, vmax=1, aspect="auto")
    ax.plot(list(truth), range(len(truth)), "x", color="C3", ms=5, label="true alignment")
    ax.set_xticks(range(S), list(src_words), rotation=90, fontsize=7)
    ax.set_yticks(range(T), list(tgt_words), fontsize=7)
    ax.set_xlabel("source")
    ax.set_ylabel("generated target (teacher-forced)")
    ax.set_title("RNNsearch alignment α_ij (cf. Fig 3)")
    ax.legend(fontsize=7, loc="lower left")
    fig.colorbar(im, ax=ax, label="attention weight")
    fig.tight_layout()
    return fig


def training_curves_figure(curves: Mapping[str, tuple[Sequence[float], Sequence[float]]], ylabel: str, title: str):
    """Dev metric against wall-clock seconds, one line per model."""
    from mlreads.core.figures import curves as draw_curves

    return draw_curves(curves, xlabel="training time (s, one thread)", ylabel=ylabel, title=title)

"""The Transformer package's figures: dev BLEU against CPU time, the Table 3 ablations, the learning-rate schedule."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt

from mlreads.core.figures import curves


def time_curves_figure(series: Mapping[str, tuple[Sequence[float], Sequence[float]]]):
    return curves(series, xlabel="training CPU time (s, one thread, evaluation included)", ylabel="dev BLEU (greedy)",
                  title="equal CPU time: Transformer against RNNsearch")  # fmt: skip


def ablation_figure(rows: Mapping[str, tuple[float, float]]):
    """Table 3 as bars: perplexity (lower is better) and BLEU (higher is better) per variant."""
    names = list(rows)
    fig, (a, b) = plt.subplots(1, 2, figsize=(9, 3.6))
    a.bar(names, [rows[n][0] for n in names], color=[f"C{i}" for i in range(len(names))])
    a.set_ylabel("test perplexity per token")
    a.set_title("perplexity (lower is better)")
    b.bar(names, [rows[n][1] for n in names], color=[f"C{i}" for i in range(len(names))])
    b.set_ylabel("test BLEU (greedy)")
    b.set_title("BLEU (higher is better)")
    for ax in (a, b):
        ax.set_xlabel("variant (base: ε_ls 0.1, sinusoids, 4 heads)")
        ax.tick_params(axis="x", labelsize=8)
    fig.suptitle("Table 3 rows D and E at small scale")
    fig.tight_layout()
    return fig

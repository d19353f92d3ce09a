"""The Transformer package's figures: dev BLEU against CPU time, the Table 3 ablations, the learning-rate schedule."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt

from mlreads.core.figures import curves


def time_curves_figure(series: Mapping[str, tuple[Sequence[float], Sequence[float]]]):
    """Dev BLEU against training CPU time, one curve per model; the title names the models it plots (the smoke
    budget trains the Transformer alone)."""
    ends = [f"{name} ends at {ys[-1]:.1f}" for name, (_, ys) in series.items() if len(ys)]
    title = (f"equal CPU time: {', '.join(ends)} dev BLEU" if len(series) > 1 and len(ends) == len(series) else
             f"{next(iter(series))}: dev BLEU against training time")  # fmt: skip
    return curves(series, xlabel="training CPU time (s, one thread, evaluation included)", ylabel="dev BLEU (greedy)",
                  title=title)  # fmt: skip


def ablation_figure(rows: Mapping[str, tuple[float, float]], title: str | None = None):
    """Table 3 as bars: perplexity (lower is better) and BLEU (higher is better) per variant, each bar labelled with
    its value, so a BLEU of 0 (a small budget produces no correct 4-gram) reads as 0, not as an empty panel. `title`:
    what the run shows (default: which table it is)."""
    names = list(rows)
    fig, (a, b) = plt.subplots(1, 2, figsize=(9, 3.6))
    colors = [f"C{i}" for i in range(len(names))]
    for ax, k in ((a, 0), (b, 1)):
        bars = ax.bar(names, [rows[n][k] for n in names], color=colors)
        ax.bar_label(bars, fmt="%.3g", fontsize=8)
        ax.margins(y=0.15)
    a.set_ylabel("test perplexity per token")
    a.set_title("perplexity (lower is better)")
    b.set_ylabel("test BLEU (greedy)")
    b.set_title("BLEU (higher is better)")
    if all(rows[n][1] == 0 for n in names):
        b.set_ylim(0, 1)
        b.text(0.5, 0.5, "BLEU is 0 for every variant:\nno correct 4-gram at this budget", transform=b.transAxes,
               ha="center", va="center", fontsize=9, color="0.35")  # fmt: skip
    for ax in (a, b):
        ax.set_xlabel("variant (base: ε_ls 0.1, sinusoids, 4 heads)")
        ax.tick_params(axis="x", labelsize=8)
    fig.suptitle(title or "Table 3 rows D and E at small scale", fontsize=10)
    fig.tight_layout()
    return fig

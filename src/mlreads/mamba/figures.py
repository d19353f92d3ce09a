"""The Mamba package's figures: what Δ selects on selective copying, accuracy curves (Tables 1 and 2), length
extrapolation and retention, the LM loss curves, and the discretisation cost. The captions, which quote the measured
numbers, stay with each experiment."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch import Tensor

from mlreads.core.figures import accuracy_curves, curves, loss_curves


def selection_figure(stats: dict, x: Tensor, data_mask: Tensor, n_show: int = 8):
    """Left: Δ over positions of one sequence in the `n_show` most selective channels (each named in the legend),
    data tokens marked. Right: mean Δ on data vs noise tokens per channel (all channels; the selective ones
    highlighted)."""
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    delta = stats["delta"][0]  # (L, E)
    top = stats["top"][:n_show]
    fig, (ax0, ax1) = plt.subplots(1, 2, figsize=(12, 4.2), gridspec_kw={"width_ratios": [2.2, 1]})
    L = delta.shape[0]
    pos = torch.arange(L)
    for c in top.tolist():
        ax0.plot(pos, delta[:, c], lw=0.9, label=f"channel {c}")
    for p in data_mask[0].nonzero().flatten().tolist():
        ax0.axvline(p, color="k", alpha=0.15, lw=2)
    ax0.set_yscale("log")
    ax0.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax0.set_xlabel("position (token; grey bars: data tokens; the rest of the input is noise, then markers)")
    ax0.set_ylabel("Δ (softplus output)")
    ax0.set_title(f"Δ over one selective-copying input, the {len(top)} most selective channels (layer 0)")
    ax0.legend(fontsize=7, loc="upper right", ncol=2)
    on_d, on_n = stats["on_data"], stats["on_noise"]
    ax1.scatter(on_n, on_d, s=8, color="0.6", label="all channels")
    ax1.scatter(on_n[stats["top"]], on_d[stats["top"]], s=14, color="C3", label="most selective channels")
    lo = float(min(on_n.min(), on_d.min())) * 0.9
    hi = float(max(on_n.max(), on_d.max())) * 1.1
    ax1.plot([lo, hi], [lo, hi], "k--", lw=0.8, label="equal Δ")
    ax1.set_xscale("log")
    ax1.set_yscale("log")
    ax1.set_xlabel("mean Δ on noise tokens (not within the conv window after data)")
    ax1.set_ylabel("mean Δ on data tokens")
    ax1.set_title("per channel; above the diagonal = selects data")
    ax1.legend(fontsize=7)
    fig.tight_layout()
    return fig


def copying_accuracy_figure(series: Mapping[str, tuple], chance: float):
    """Table 1: accuracy on the copied tokens against steps, S6 against its LTI ablation."""
    return accuracy_curves({"S6 (selective)": series["s6"], "LTI ablation (S4-like)": series["lti"]}, chance=chance,
                           title="selective copying: accuracy on the copied tokens (full task)")  # fmt: skip


EXTRAPOLATION_LABELS = {"mamba": "Mamba (recurrent, segmented)", "attention": "attention, absolute positions"}


def extrapolation_figure(lengths: Sequence[int], acc: Mapping[str, Sequence[float]], chance: float, train_len: int):
    """Table 2: induction-heads accuracy (acc in %) against the test length, for each model in `acc` ("mamba",
    "attention"; a series shorter than `lengths` covers its first lengths)."""
    return accuracy_curves({EXTRAPOLATION_LABELS[name]: (lengths[: len(a)], [v / 100 for v in a])
                            for name, a in acc.items()},
                           chance=chance, xlabel="test sequence length (tokens)", logx=2,
                           vrefs={f"train length {train_len}": train_len},
                           title="induction heads: length extrapolation (cf. Table 2)")  # fmt: skip


def retention_figure(distances: Sequence[int], retention: Sequence[float], n_per_distance: int, chance: float,
                     train_len: int):
    """Recall accuracy (in %) against the distance from the recalled pair to the query."""
    return accuracy_curves({f"Mamba ({n_per_distance} sequences per distance)":
                            (distances, [a / 100 for a in retention])},
                           chance=chance, logx=2, xlabel="distance from the recalled pair to the query (tokens)",
                           vrefs={f"longest distance seen in training ({train_len - 1})": train_len},
                           title="retention: recall accuracy against distance")  # fmt: skip


def lm_loss_figure(histories: Mapping[str, list[dict]], tokens_per_step_m: float, unigram: float):
    """Training and validation loss against tokens seen (millions), Mamba against Transformers."""
    return loss_curves(histories, x_scale=tokens_per_step_m, ylabel="loss (nats / char)",
                       xlabel="tokens seen (millions); the equal-time Transformer runs as long as Mamba",
                       title="Mamba vs Transformer, equal parameters (and tokens, or time)",
                       refs={f"unigram entropy {unigram:.2f}": unigram})  # fmt: skip


def discretization_figure(dense_ns: Sequence[int], dense_s: Sequence[float], diag_ns: Sequence[int],
                          diag_s: Sequence[float], k_dense: float, k_diag: float):
    """Time per token of ZOH against the state size N (log-log), dense A against diagonal A, with fitted exponents."""
    return curves({"dense A: matrix_exp + solve": (list(dense_ns), [1e6 * s for s in dense_s]),
                   "diagonal A: elementwise": (list(diag_ns), [1e6 * s for s in diag_s])},
                  xlabel="state size N", ylabel="time per token (µs, one channel)", logx=2, logy=True,
                  title=f"ZOH per token: dense ∝ N^{k_dense:.2f}, diagonal ∝ N^{k_diag:.2f}")  # fmt: skip

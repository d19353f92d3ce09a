"""The S4 experiments' figures. Each function takes plain tensors / series and returns a matplotlib Figure for
`ctx.savefig`; accuracy curves come from `mlreads.core.figures`."""

from __future__ import annotations

from collections.abc import Mapping

import torch

from mlreads.core.figures import Series, curves


def reconstruction_figure(signals: torch.Tensor, recon: Mapping[str, torch.Tensor], metrics: Mapping[str, float],
                          d_state: int):  # fmt: skip
    """Two held-out signals (2, L) and their reconstructions from the state at t = 1 (recon: name -> (2, L))."""
    import matplotlib.pyplot as plt

    length = signals.shape[-1]
    s = (torch.arange(length) + 0.5) / length
    fig, axes = plt.subplots(2, 1, figsize=(8, 5.5), sharex=True)
    for i, ax in enumerate(axes):
        ax.plot(s, signals[i], "k", lw=2.5, alpha=0.5, label="signal f")
        ax.plot(s, recon["legs"][i], "C0", lw=1.2, label=f"LegS, N={d_state}, fitted read-out "
                f"(MSE {metrics['mse_legs']:.1e})")  # fmt: skip
        ax.plot(s, recon["legendre"][i], "C2--", lw=1, label=f"LegS, Legendre read-out "
                f"(MSE {metrics['mse_legs_legendre']:.1e})")  # fmt: skip
        ax.plot(s, recon["random"][i], "C3", lw=1.2,
                label=f"random A, fitted read-out (MSE {metrics['mse_random']:.1e})")
        ax.set_ylabel(f"f(s), test signal {i + 1}")
    axes[0].legend(fontsize=7, loc="upper right")
    axes[0].set_title("The whole history rebuilt from the state at t = 1: LegS follows it, a random A cannot")
    axes[1].set_xlabel("s (fraction of the history)")
    fig.tight_layout()
    return fig


def init_accuracy_figure(series: Mapping[str, Series], sequence_length: int):
    """Validation accuracy (fractions) against step, one series per (task, A)."""
    pct = {name: (xs, [100 * v for v in ys]) for name, (xs, ys) in series.items()}
    title = f"A fixed: HiPPO-LegS vs random (MNIST as L = {sequence_length} steps)"
    return curves(pct, xlabel="training step", ylabel="validation accuracy (%)", refs={"chance (10%)": 10.0},
                  ylim=(0, 102), title=title)  # fmt: skip


def smnist_accuracy_figure(series: Series, target: float, sequence_length: int, test_acc: float):
    """Validation accuracy (fraction) against step, with the target accuracy and chance as references."""
    xs, ys = series
    return curves({"S4D, validation": (xs, [100 * v for v in ys])}, xlabel="training step",
                  ylabel="validation accuracy (%)", refs={f"target {100 * target:.0f}%": 100 * target,
                                                          "chance (10%)": 10.0},
                  ylim=(0, 102), title=f"S4D on sMNIST (L = {sequence_length}): test {test_acc:.2f}%")  # fmt: skip


def kernels_figure(kernels: torch.Tensor, n_channels: int = 4):
    """The first layer's SSM convolution kernels K_l (H, L) after training, a few channels."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 3.5))
    for h in range(min(n_channels, kernels.shape[0])):
        ax.plot(kernels[h].numpy(), lw=1, label=f"channel {h}")
    ax.set_xlabel("lag l (time steps)")
    ax.set_ylabel("kernel value K_l")
    ax.set_title("Layer-0 SSM kernels after training: each channel's memory of its input")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig

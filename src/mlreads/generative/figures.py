"""Plots of the generative experiments: sample grids, GAN curves and D vs D*, diffusion chains, the 2-D ablation."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch


def _plt():
    import matplotlib.pyplot as plt

    return plt


def image_grid(images: torch.Tensor, title: str, side: int = 28, gap: int = 2):
    """A square grid of (n, side^2) images in [0, 1], white background, black ink like the paper's figures, with
    light gray gaps of `gap` pixels between them (the reverse-process figure uses the same colours)."""
    plt = _plt()
    n = len(images)
    cols = int(n**0.5 + 0.999)
    rows = (n + cols - 1) // cols
    step = side + gap
    canvas = torch.full((rows * step - gap, cols * step - gap), 0.15)  # the gaps: light gray on gray_r
    for r in range(rows):  # an empty cell of the last row stays white, as a blank image
        for c in range(cols):
            canvas[r * step : r * step + side, c * step : c * step + side] = 0.0
    for i, img in enumerate(images):
        r, c = divmod(i, cols)
        canvas[r * step : r * step + side, c * step : c * step + side] = img.reshape(side, side)
    fig, ax = plt.subplots(figsize=(6, 6 * rows / cols))
    im = ax.imshow(canvas.numpy(), cmap="gray_r", vmin=0, vmax=1)
    fig.colorbar(im, ax=ax, fraction=0.03, label="pixel intensity")
    ax.set_axis_off()
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    return fig


def neighbours_grid(samples: torch.Tensor, nearest: torch.Tensor):
    """GAN Fig 2: samples (top row) above their nearest training images (bottom row)."""
    plt = _plt()
    n = len(samples)
    fig, axes = plt.subplots(2, n, figsize=(1.1 * n, 2.6))
    for i in range(n):
        for r, img in enumerate((samples[i], nearest[i])):
            axes[r, i].imshow(img.reshape(28, 28).numpy(), cmap="gray_r", vmin=0, vmax=1)
            axes[r, i].set_xticks([])
            axes[r, i].set_yticks([])
    axes[0, 0].set_ylabel("sample", fontsize=8)
    axes[1, 0].set_ylabel("nearest\ntraining", fontsize=8)
    fig.suptitle("Fig 2: samples are not copies of their nearest training images", fontsize=9)
    fig.tight_layout()
    return fig


def gan_curves_figure(history: Sequence[Mapping]):
    """GAN training: the two players' losses (left: the training batches' when D and G took separate phases, else
    those on the fixed probe) and mean D on real and generated images (right)."""
    plt = _plt()
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 3.8))
    key = "loss_" if any("loss_d" in r for r in history) else "probe_loss_"
    rows = [r for r in history if key + "d" in r]
    where = "" if key == "loss_" else " (fixed probe)"
    a.plot([r["step"] for r in rows], [r[key + "d"] for r in rows], label=f"D loss -[log D(x) + log(1 - D(G(z)))]{where}")
    a.plot([r["step"] for r in rows], [r[key + "g"] for r in rows], label=f"G loss -log D(G(z)){where}")
    a.axhline(2 * torch.log(torch.tensor(2.0)).item(), color="gray", ls="--", lw=0.8, label="D loss at D = 1/2 (log 4)")
    a.set_xlabel("step")
    a.set_ylabel("loss (nats)")
    a.legend(fontsize=7)
    rows = [r for r in history if "d_real" in r]
    b.plot([r["step"] for r in rows], [r["d_real"] for r in rows], "o-", ms=3, label="mean D(x), real")
    b.plot([r["step"] for r in rows], [r["d_fake"] for r in rows], "s-", ms=3, label="mean D(G(z)), generated")
    b.axhline(0.5, color="gray", ls="--", lw=0.8, label="equilibrium D = 1/2")
    b.set_xlabel("step")
    b.set_ylabel("discriminator output")
    b.set_ylim(-0.02, 1.02)
    b.legend(fontsize=7)
    fig.tight_layout()
    return fig


def discriminator_figure(x, pd, pg, d_star, d, d_eq, data=(2.0, 0.5), g=(0.0, 1.0)):
    """GAN Fig 1 / Prop 1: the densities, D* = p_data / (p_data + p_g) and the trained D; and D when p_g = p_data.
    `data`, `g`: (mean, s.d.) of p_data and p_g, for the legend."""
    plt = _plt()
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 3.8))
    a.plot(x, pd, color="k", ls=":", label=f"p_data = N({data[0]:g}, {data[1]:g}^2)")
    a.plot(x, pg, color="g", label=f"p_g = N({g[0]:g}, {g[1]:g}^2)")
    a.plot(x, d_star, color="C0", lw=3, alpha=0.5, label="D* = p_data / (p_data + p_g)")
    a.plot(x, d, color="C3", ls="--", label="trained D")
    a.set_xlim(-4, 5)
    a.set_xlabel("x")
    a.set_ylabel("density / D(x)")
    a.legend(fontsize=7)
    a.set_title("Prop 1: the trained discriminator approaches D*", fontsize=9)
    b.plot(x, pd, color="k", ls=":", label="p_data = p_g")
    b.plot(x, d_eq, color="C3", ls="--", label="trained D")
    b.axhline(0.5, color="C0", lw=3, alpha=0.5, label="D* = 1/2")
    b.set_xlim(-1, 5)
    b.set_ylim(0, 1)
    b.set_xlabel("x")
    b.set_ylabel("density / D(x)")
    b.legend(fontsize=7)
    b.set_title("Thm 1: at p_g = p_data, D = 1/2 everywhere", fontsize=9)
    fig.tight_layout()
    return fig


def forward_chain_figure(x0: torch.Tensor, keep: Mapping[int, torch.Tensor], s):
    """The forward process: one digit at increasing t (top), and sqrt(alpha_bar_t) / sqrt(1 - alpha_bar_t) (bottom)."""
    plt = _plt()
    fig = plt.figure(figsize=(10, 4.5))
    items = [(0, x0)] + sorted(keep.items())
    for i, (t, img) in enumerate(items):
        ax = fig.add_subplot(2, len(items), i + 1)
        ax.imshow(img.reshape(28, 28).numpy(), cmap="gray", vmin=-1.5, vmax=1.5)
        ax.set_title(f"t = {t}", fontsize=8)
        ax.set_axis_off()
    ax = fig.add_subplot(2, 1, 2)
    t = torch.arange(1, s.T + 1)
    ax.plot(t, s.alpha_bar.sqrt(), label="signal sqrt(alpha_bar_t)")
    ax.plot(t, (1 - s.alpha_bar).sqrt(), label="noise sqrt(1 - alpha_bar_t)")
    ax.set_xlabel("t")
    ax.set_ylabel("coefficient in Eq 4")
    ax.legend(fontsize=8)
    fig.suptitle(f"q(x_t | x_0): the digit dissolves into N(0, I) (alpha_bar_T = {float(s.alpha_bar[-1]):.1e})",
                 fontsize=9)  # fmt: skip
    fig.tight_layout()
    return fig


def reverse_chain_figure(chain: Mapping[int, torch.Tensor], n: int = 6, side: int = 28, kind: str = "beta"):
    """Algorithm 2: a few samples at decreasing t, from noise (left) to x_0 (right), drawn with the sample grid's
    colours (white background, black ink); `kind` is the reverse-process variance they were sampled with."""
    plt = _plt()
    times = sorted(chain, reverse=True)
    fig, axes = plt.subplots(n, len(times), figsize=(1.2 * len(times), 1.2 * n), squeeze=False)
    for r in range(n):
        for c, t in enumerate(times):
            axes[r, c].imshow(chain[t][r].reshape(side, side).numpy(), cmap="gray_r", vmin=-1, vmax=1)
            axes[r, c].set_axis_off()
            if r == 0:
                axes[r, c].set_title(f"t = {t}", fontsize=8)
    fig.suptitle(f"The reverse process (Algorithm 2), sigma^2 = {kind}", fontsize=9)
    fig.tight_layout()
    return fig


def ablation_figure(held_out: torch.Tensor, samples: Mapping[str, torch.Tensor], metrics: Mapping):
    """Table 2 in 2-D: held-out data and each objective's samples, titled with sample quality and likelihood."""
    plt = _plt()
    names = list(samples)
    fig, axes = plt.subplots(1, len(names) + 1, figsize=(3 * (len(names) + 1), 3.2), sharex=True, sharey=True)
    axes[0].scatter(held_out[:, 0], held_out[:, 1], s=2, color="k")
    axes[0].set_title("held-out data", fontsize=8)
    for ax, name in zip(axes[1:], names):
        ax.scatter(samples[name][:, 0], samples[name][:, 1], s=2)
        bound = f", bound {metrics[f'vlb_{name}']:.2f} nats/dim" if f"vlb_{name}" in metrics else ""
        ax.set_title(f"{name}\nSW {metrics[f'sw_{name}']:.3f}{bound}", fontsize=8)
    for ax in axes:
        ax.set_xlim(-2.5, 2.5)
        ax.set_ylim(-2.5, 2.5)
        ax.set_xlabel("x1")
    axes[0].set_ylabel("x2")
    fig.suptitle("Table 2 in 2-D: samples by objective (lower SW = better samples; lower bound = better likelihood)",
                 fontsize=9)  # fmt: skip
    fig.tight_layout()
    return fig

"""Figures of the Deep Learning review experiments: Fig 1a's warped input space, and the loss distributions per
width (the Choromanska et al. 2015 figure the local-minima sentence cites)."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import torch


@torch.no_grad()
def separability(students, best: int, x, y, line):
    """Left: input space, the classes, the best line and the student's boundary. Right: the hidden space, where
    a grid of the input plane is warped by tanh and the classes fall on either side of a line (Fig 1a middle)."""
    fig, (a0, a1) = plt.subplots(1, 2, figsize=(10, 4.5))
    pos, neg = y > 0.5, y < 0.5
    a0.scatter(x[neg, 0], x[neg, 1], s=4, c="C0", label="class 0")
    a0.scatter(x[pos, 0], x[pos, 1], s=4, c="C3", label="class 1")
    gx = torch.linspace(-2, 2, 200)
    X, Y = torch.meshgrid(gx, gx, indexing="xy")
    grid = torch.stack([X.reshape(-1), Y.reshape(-1)], 1)
    z = students(grid)[best].reshape(200, 200)
    a0.contour(X, Y, z, levels=[0], colors="k", linewidths=1.5)
    w, b = line.weight[0], line.bias[0]
    xs = torch.tensor([-2.0, 2.0])
    if abs(float(w[1])) > 1e-6:
        a0.plot(xs, -(w[0] * xs + b) / w[1], "g--", label="best line (logistic regression)")
    a0.plot([], [], "k-", label="2-2-1 net boundary")
    a0.set_xlim(-2, 2)
    a0.set_ylim(-2, 2)
    a0.set_xlabel("input x1")
    a0.set_ylabel("input x2")
    a0.set_title("input space: no line separates the band")
    a0.legend(fontsize=7, loc="lower left")

    # the warped grid: lines of constant x1 and of constant x2, mapped through the hidden layer
    for v in np.linspace(-2, 2, 11):
        const = torch.full_like(gx, float(v))
        for pts in (torch.stack([const, gx], 1), torch.stack([gx, const], 1)):
            h = students.hidden(pts)[best]
            a1.plot(h[:, 0], h[:, 1], color="0.8", lw=0.6)
    h = students.hidden(x)[best]
    a1.scatter(h[neg, 0], h[neg, 1], s=4, c="C0")
    a1.scatter(h[pos, 0], h[pos, 1], s=4, c="C3")
    v, c = students.v[best], students.c[best]
    hs = torch.tensor([-1.0, 1.0])
    if abs(float(v[1])) > 1e-6:
        a1.plot(hs, -(v[0] * hs + c) / v[1], "k-", label="output unit's boundary (a line)")
    a1.set_xlim(-1.05, 1.05)
    a1.set_ylim(-1.05, 1.05)
    a1.set_xlabel("hidden unit 1, tanh(z1)")
    a1.set_ylabel("hidden unit 2, tanh(z2)")
    a1.set_title("hidden space: the warped grid, classes split by a line")
    a1.legend(fontsize=7, loc="lower left")
    fig.tight_layout()
    return fig


def loss_distributions(losses: dict):
    """Final training (left) and test (right) losses of every seed, per hidden width: the spread shrinks."""
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for ax, k, name in ((axes[0], 0, "training"), (axes[1], 1, "test")):
        for i, (w, pair) in enumerate(losses.items()):
            vals = pair[k].numpy()
            ax.scatter(vals, np.full_like(vals, i) + np.linspace(-0.15, 0.15, len(vals)), s=14, label=f"width {w}")
        ax.set_yticks(range(len(losses)))
        ax.set_yticklabels([f"{w} units" for w in losses])
        ax.set_xlabel(f"final {name} loss (nats), one dot per initialisation")
        ax.set_ylabel("hidden width")
        ax.set_xscale("log")
        ax.set_title(f"{name} loss across seeds")
    fig.tight_layout()
    return fig

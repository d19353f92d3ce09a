"""Figures of the dropout experiments, re-drawn from our runs: test error vs epochs (Fig 4 / 9 style), MC averaging
vs weight scaling (Fig 11), hidden activation histograms (Fig 8)."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np


def error_curves(histories: dict, n_train: int, batch_size: int, title: str):
    """Train and test error (%) against epochs for each arm; `title` says what the run measured."""
    fig, ax = plt.subplots(figsize=(6.4, 4.0))
    for i, (name, hist) in enumerate(histories.items()):
        rows = [r for r in hist if "test_err" in r]
        ep = [r["step"] * batch_size / n_train for r in rows]
        ax.plot(ep, [r["test_err"] for r in rows], "o-", ms=3, color=f"C{i}", label=f"{name}: test")
        ax.plot(ep, [r["train_err"] for r in rows], "s--", ms=3, color=f"C{i}", alpha=0.6, label=f"{name}: train")
    ax.set_xlabel("epoch")
    ax.set_ylabel("classification error (%, linear below 0.5)")
    ax.set_yscale("symlog", linthresh=0.5)  # training error reaches exactly 0 without dropout
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def mc_vs_weight_scaling(per_net: list, k_check: int, diff: float, tol: float):
    """Fig 11: for each trained net, the test error of the MC average of k thinned nets (mean +- s.d. over repeats)
    against k, and its weight-scaled error as a dashed line of the same colour. The title gives the measured mean
    difference at `k_check` against the tolerance."""
    fig, ax = plt.subplots(figsize=(6.4, 4.0))
    for i, (err_ws, errs) in enumerate(per_net):
        ks = sorted(errs)
        mean = [float(np.mean(errs[k])) for k in ks]
        sd = [float(np.std(errs[k], ddof=1)) if len(errs[k]) > 1 else 0.0 for k in ks]
        ax.errorbar(ks, mean, yerr=sd, fmt="o-", ms=4, capsize=3, color=f"C{i}", label=f"net {i}: Monte-Carlo")
        ax.axhline(err_ws, color=f"C{i}", ls="--", lw=1, label=f"net {i}: weight scaling")
    ax.set_xscale("log")
    ax.set_xlabel("number of sampled thinned networks k")
    ax.set_ylabel("test classification error (%)")
    ax.set_title(f"at k = {k_check}, Monte-Carlo minus weight scaling = {diff:+.3f} pp (mean over {len(per_net)} "
                 f"nets; tolerance +- {tol:.2f})", fontsize=9)
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    return fig


def activation_histograms(acts: dict, zero_frac: dict):
    """Fig 8: per-unit mean activations (left) and all activations (right), without and with dropout; `zero_frac`:
    each arm's share of activations exactly 0 (the right panel's title)."""
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for i, (name, h) in enumerate(acts.items()):
        unit_means = h.mean(0).numpy()
        axes[0].hist(unit_means, bins=40, alpha=0.6, color=f"C{i}", label=f"{name} (mean {h.mean():.2f})")
        axes[1].hist(h.reshape(-1).numpy(), bins=60, alpha=0.6, color=f"C{i}", label=name, log=True)
    axes[0].set_xlabel("mean activation of a hidden unit over test images")
    axes[0].set_ylabel("number of units")
    axes[0].set_title("per-unit mean activation")
    axes[1].set_xlabel("hidden activation")
    axes[1].set_ylabel("count (log)")
    axes[1].set_title("all activations; exactly 0: " + ", ".join(f"{k} {v:.0%}" for k, v in zero_frac.items()))
    for ax in axes:
        ax.legend(fontsize=8)
    fig.tight_layout()
    return fig

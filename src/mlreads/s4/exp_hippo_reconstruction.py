"""s4/hippo-reconstruction: HiPPO-LegS memorises a signal's history online; a random A of the same size cannot.

Papers: HiPPO (arXiv 2008.07669) Fig. 2-3; LSSL (arXiv 2110.13985) §5.4 for the random-A ablation (its scale).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from mlreads.core.fields import positive
from mlreads.core.run.runner import RunContext
from mlreads.s4 import figures
from mlreads.s4.hippo import legs, random_a
from mlreads.s4.memory import legendre_reconstruct, scaled_online_states


@dataclass(frozen=True)
class ReconConfig:
    d_state: int = positive(64)  # N
    length: int = positive(1000)  # samples of the signal on [0, 1]
    n_freq: int = positive(32)  # the signal is a random Fourier series with this many frequencies, amplitudes 1/j
    n_train: int = positive(1024)  # signals used to fit each linear read-out
    n_test: int = positive(256)


def smooth_signals(n: int, cfg: ReconConfig, gen: torch.Generator) -> torch.Tensor:
    """Random smooth signals on [0, 1]: c + Σ_j (a_j cos 2πjs + b_j sin 2πjs)/j, a, b, c ~ N(0, 1). (n, L)."""
    s = (torch.arange(cfg.length, dtype=torch.float64) + 0.5) / cfg.length
    j = torch.arange(1, cfg.n_freq + 1, dtype=torch.float64)
    a, b = (torch.randn(n, cfg.n_freq, generator=gen, dtype=torch.float64) / j for _ in range(2))
    arg = 2 * math.pi * j[:, None] * s  # (J, L)
    return torch.randn(n, 1, generator=gen, dtype=torch.float64) + a @ torch.cos(arg) + b @ torch.sin(arg)


def _relative_mse(recon: torch.Tensor, target: torch.Tensor) -> float:
    return ((recon - target) ** 2).mean().item() / target.var().item()


def run_reconstruction(cfg: ReconConfig, ctx: RunContext) -> dict:
    """Memorise each signal online with dx/dt = (1/t)(A x + B f) for A = LegS and A = random (LSSL scale, B = 1); then
    reconstruct the whole history from the final state x(1). Both get the best linear read-out fitted by least squares
    on training signals (the same decoder class); LegS also gets its analytic Legendre read-out (no fitting).
    MSEs are relative to the signal variance, on held-out signals."""
    gen = ctx.generator("signals")
    f_train, f_test = smooth_signals(cfg.n_train, cfg, gen), smooth_signals(cfg.n_test, cfg, gen)
    systems = {"legs": legs(cfg.d_state), "random": random_a(cfg.d_state, ctx.generator("init/random-a"))}
    recon, metrics = {}, {}
    for name, (a, b) in systems.items():
        x_train, x_test = scaled_online_states(a, b, f_train), scaled_online_states(a, b, f_test)  # (M, N)
        readout = torch.linalg.pinv(x_train, rtol=1e-12) @ f_train  # (N, L)
        recon[name] = x_test @ readout  # (M, L)
        metrics[f"mse_{name}"] = _relative_mse(recon[name], f_test)
        metrics[f"state_rank_{name}"] = int((torch.linalg.svdvals(x_train) > 1e-8 * x_train.abs().max()).sum())
        if name == "legs":
            recon["legendre"] = legendre_reconstruct(x_test, cfg.length)  # (M, L), no fitting
            metrics["mse_legs_legendre"] = _relative_mse(recon["legendre"], f_test)
    metrics["mse_ratio_random_over_legs"] = metrics["mse_random"] / metrics["mse_legs"]
    ctx.savefig(figures.reconstruction_figure(f_test[:2], {k: v[:2] for k, v in recon.items()}, metrics, cfg.d_state),
                "reconstruction",
                caption=("Two held-out signals (thick grey) rebuilt from the final state x(1) of an online memory "
                         f"with N = {cfg.d_state}: HiPPO-LegS with a fitted linear read-out, LegS with its analytic "
                         "Legendre read-out (dashed, no fitting), and a random A with a fitted read-out. The claim "
                         "predicts the LegS curves follow the signal over its whole history and the random A's does "
                         f"not; the random A's error is {metrics['mse_ratio_random_over_legs']:.1f}x LegS's "
                         "(relative MSEs in the legend)."))  # fmt: skip
    return metrics

"""Noise schedules and sampling-time grids by name, as diffusers' `DDPMScheduler` offers them.

The DDPM paper (Ho et al. 2020, Section 4) uses one schedule: beta_t linear from 1e-4 to 0.02 over T = 1000 steps
(`ddpm.linear_betas`), and samples on all T steps. What diffusers users reach for beyond that, here under diffusers'
own names (tests/generative/test_ddpm_compat.py checks each against diffusers):

    beta_schedule "linear"              the paper's
                  "scaled_linear"       linear in sqrt(beta) (latent diffusion's choice; not in the paper)
                  "squaredcos_cap_v2"   Nichol & Dhariwal 2021 ("Improved DDPM", a later paper), Eq 17:
                  (alias "cosine")      alpha_bar(t) = f(t) / f(0), f(t) = cos((t/T + s) / (1 + s) * pi/2)^2,
                                        s = 0.008, each beta clipped at 0.999
    timesteps(T, n, spacing)            the n times to sample on (with `ddpm.sample(..., times=)`), diffusers'
                                        `set_timesteps(n)` with timestep_spacing "leading" (its DDPM default),
                                        "trailing" or "linspace"; ours count from 1 (diffusers' timestep + 1)

Refused in one line: any other schedule name (diffusers' "sigmoid", "laplace") or spacing.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from mlreads.generative.ddpm import linear_betas

BETA_SCHEDULES = ("linear", "scaled_linear", "squaredcos_cap_v2", "cosine")
SPACINGS = ("leading", "trailing", "linspace")


def cosine_betas(T: int = 1000, s: float = 0.008, max_beta: float = 0.999) -> Tensor:
    """Nichol & Dhariwal 2021, Eq 17: betas from alpha_bar(t) = f(t) / f(0) on t = 0..T, clipped at max_beta."""
    def f(t: float) -> float:
        return math.cos((t / T + s) / (1 + s) * math.pi / 2) ** 2

    return torch.tensor([min(1 - f(t + 1) / f(t), max_beta) for t in range(T)], dtype=torch.float64)


def beta_schedule(name: str, T: int = 1000, beta_start: float = 1e-4, beta_end: float = 0.02) -> Tensor:
    """betas (T,), float64, by diffusers' `beta_schedule` name."""
    if name not in BETA_SCHEDULES:
        raise ValueError(f"beta_schedule={name!r} is not one of {BETA_SCHEDULES}")
    if name == "linear":
        return linear_betas(T, beta_start, beta_end)
    if name == "scaled_linear":
        return torch.linspace(beta_start**0.5, beta_end**0.5, T, dtype=torch.float64) ** 2
    return cosine_betas(T)


def timesteps(T: int, n: int, spacing: str = "leading") -> list[int]:
    """n distinct times in 1..T, descending: diffusers' `set_timesteps(n)` grid, plus 1 (it counts from 0)."""
    if spacing not in SPACINGS:
        raise ValueError(f"timestep_spacing={spacing!r} is not one of {SPACINGS}")
    if not 1 <= n <= T:
        raise ValueError(f"n={n} steps: give 1..T={T}")
    if spacing == "leading":  # 0, r, 2r, ... with r = T // n
        grid = [i * (T // n) for i in range(n)]
    elif spacing == "trailing":  # T - 1, T - 1 - T/n, ..., rounded half to even as numpy does
        grid = [round(T - i * (T / n)) - 1 for i in range(n)]
    else:  # n points from 0 to T - 1, rounded
        grid = [round(i * ((T - 1) / (n - 1))) if i < n - 1 else T - 1 for i in range(n)] if n > 1 else [0]
    return sorted((t + 1 for t in grid), reverse=True)

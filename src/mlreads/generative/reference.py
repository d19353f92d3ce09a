"""Slow, obviously correct twins of the generative fast paths, used only by tests."""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor


def parzen_ref(centres: np.ndarray, x: np.ndarray, sigma: float) -> np.ndarray:
    """One point at a time: log (1/n) sum_i prod_d N(x_d; c_id, sigma^2), with a stable log-mean-exp."""
    out = []
    d = centres.shape[1]
    for row in x:
        e = -((row[None] - centres) ** 2).sum(1) / (2 * sigma**2)
        m = e.max()
        out.append(m + math.log(np.exp(e - m).mean()) - 0.5 * d * math.log(2 * math.pi * sigma**2))
    return np.array(out)


def frechet_ref(mu1: np.ndarray, cov1: np.ndarray, mu2: np.ndarray, cov2: np.ndarray) -> float:
    """pytorch-fid's formula with tr sqrt(S1 S2) from the eigenvalues of the (non-symmetric) product S1 S2."""
    eig = np.linalg.eigvals(cov1 @ cov2)
    return float(((mu1 - mu2) ** 2).sum() + np.trace(cov1) + np.trace(cov2) - 2 * np.sqrt(eig.real.clip(0)).sum())


def forward_chain_ref(betas: Tensor, x0: Tensor, t: int, gen: torch.Generator) -> Tensor:
    """q(x_t | x_0) by iterating Eq 2 t times: x_s = sqrt(1 - beta_s) x_{s-1} + sqrt(beta_s) eps_s."""
    x = x0.clone()
    for s in range(t):
        x = (1 - betas[s]).sqrt() * x + betas[s].sqrt() * torch.randn(x.shape, generator=gen, dtype=x.dtype)
    return x


def posterior_ref(betas: Tensor, x0: Tensor, xt: Tensor, t: int) -> tuple[Tensor, Tensor]:
    """Eq 6-7 by Bayes' rule on Gaussians: q(x_{t-1}|x_0) = N(a x_0, 1 - a) times q(x_t|x_{t-1}) = N(sqrt(alpha_t)
    x_{t-1}, beta_t), combined as precisions."""
    alpha_bar = torch.cumprod(1 - betas, 0)
    a_prev = alpha_bar[t - 2] if t > 1 else torch.tensor(1.0, dtype=betas.dtype)
    beta = betas[t - 1]
    prec = 1 / (1 - a_prev) + (1 - beta) / beta if t > 1 else None
    if prec is None:  # t = 1: x_0 is known exactly
        return x0.clone(), torch.zeros((), dtype=betas.dtype)
    var = 1 / prec
    mean = var * (a_prev.sqrt() * x0 / (1 - a_prev) + (1 - beta).sqrt() * xt / beta)
    return mean, var

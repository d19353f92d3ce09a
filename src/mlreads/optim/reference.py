"""Slow, obviously correct twins of the optimisers, written straight from the papers' pseudo-code.

Used only by tests: `adam_ref` is Algorithm 1 of Kingma & Ba (2015) line by line; `sophia_ref` is Algorithm 1 of
Liu et al. (2023) with the denominator as the official code writes it (see sophia.py, Deviations).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor


def adam_ref(theta: Tensor, grads: Sequence[Tensor], lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8,
             bias_correction: bool = True, weight_decay: float = 0.0, decoupled: bool = False) -> list[Tensor]:  # fmt: skip
    """The iterates theta_1..theta_T for a fixed gradient sequence g_1..g_T (each g_t taken as given)."""
    m = torch.zeros_like(theta)
    v = torch.zeros_like(theta)
    out = []
    for t, g in enumerate(grads, start=1):
        if weight_decay and not decoupled:
            g = g + weight_decay * theta
        if weight_decay and decoupled:
            theta = theta * (1 - lr * weight_decay)
        m = beta1 * m + (1 - beta1) * g  # m_t
        v = beta2 * v + (1 - beta2) * g * g  # v_t
        m_hat = m / (1 - beta1**t) if bias_correction else m
        v_hat = v / (1 - beta2**t) if bias_correction else v
        theta = theta - lr * m_hat / (torch.sqrt(v_hat) + eps)
        out.append(theta)
    return out


def sophia_ref(theta: Tensor, grads: Sequence[Tensor], hess_grads: dict[int, Tensor], lr=1e-4, beta1=0.965,
               beta2=0.99, rho=0.04, weight_decay=0.1, bs=5120) -> list[Tensor]:  # fmt: skip
    """Iterates for given gradients; after step t in `hess_grads`, h = b2 h + (1 - b2) g_hat^2 with that g_hat."""
    m = torch.zeros_like(theta)
    h = torch.zeros_like(theta)
    out = []
    for t, g in enumerate(grads, start=1):
        theta = theta * (1 - lr * weight_decay)
        m = beta1 * m + (1 - beta1) * g
        step = torch.clamp(m.abs() / (rho * bs * h + 1e-15), max=1.0)
        theta = theta - lr * torch.sign(m) * step
        out.append(theta)
        if t in hess_grads:
            h = beta2 * h + (1 - beta2) * hess_grads[t] ** 2
    return out

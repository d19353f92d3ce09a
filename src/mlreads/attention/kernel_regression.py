"""Attention as kernel regression: the Nadaraya-Watson estimator is softmax attention with a Gaussian score.

Nadaraya (1964) and Watson (1964); the attention reading follows d2l, "Attention Pooling by Similarity" (§11.2).
The reading list's gloss: attention uses the data to decide which part of the data to use, and one can define a
regression model with attention.

The estimator, with kernel K and bandwidth h:

    f̂(x) = Σ_i K((x - x_i) / h) y_i / Σ_j K((x - x_j) / h)

With the Gaussian kernel K(u) = exp(-u² / 2) / √(2π), the constant cancels in the ratio and

    f̂(x) = Σ_i softmax_i(-(x - x_i)² / (2h²)) y_i,

which is attention pooling with query x, keys x_i, values y_i and the score a(q, k) = -(q - k)² / (2h²).

Glossary (code name -> symbol): queries x, keys x_i, values y_i, bandwidth h, `w` the learned inverse bandwidth of
the parametric version (d2l: a(q, k) = -((q - k) w)² / 2, so h = 1 / |w|).

Deviations: none.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from mlreads.core.nn.hooks import HookedModule, HookPoint


def gaussian_kernel(u: Tensor) -> Tensor:
    """K(u) = exp(-u² / 2) / √(2π)."""
    return torch.exp(-0.5 * u**2) / math.sqrt(2 * math.pi)


def nadaraya_watson(queries: Tensor, keys: Tensor, values: Tensor, bandwidth: float | Tensor) -> Tensor:
    """f̂(x) = Σ K((x - x_i)/h) y_i / Σ K((x - x_j)/h), written as the kernel ratio. queries (Q,), keys and values
    (n,) -> (Q,). The slow, literal form; underflows for tiny h, where `attention_pooling` does not."""
    weights = gaussian_kernel((queries[:, None] - keys[None, :]) / bandwidth)  # (Q, n)
    return (weights * values[None, :]).sum(1) / weights.sum(1)


def attention_scores(queries: Tensor, keys: Tensor, bandwidth: float | Tensor) -> Tensor:
    """a(q, k) = -(q - k)² / (2h²). (Q,), (n,) -> (Q, n)."""
    return -((queries[:, None] - keys[None, :]) ** 2) / (2 * bandwidth**2)


def attention_pooling(queries: Tensor, keys: Tensor, values: Tensor, bandwidth: float | Tensor,
                      exclude_self: bool = False) -> tuple[Tensor, Tensor]:
    """Σ_i softmax_i(a(x, x_i)) y_i and the attention weights (Q, n). `exclude_self` masks the diagonal (queries
    are the keys themselves: leave-one-out)."""
    scores = attention_scores(queries, keys, bandwidth)  # (Q, n)
    if exclude_self:
        scores = scores.masked_fill(torch.eye(len(queries), len(keys), dtype=torch.bool), float("-inf"))
    weights = scores.softmax(dim=1)  # (Q, n)
    return weights @ values, weights


def loo_bandwidth(x: Tensor, y: Tensor, grid: Tensor) -> tuple[float, Tensor]:
    """The bandwidth on `grid` with the lowest leave-one-out squared error, and the errors (len(grid),)."""
    errors = torch.stack([((attention_pooling(x, x, y, h, exclude_self=True)[0] - y) ** 2).mean() for h in grid])
    return float(grid[errors.argmin()]), errors


@dataclass(frozen=True)
class ParametricAttentionConfig:
    """`ParametricAttention`'s constructor argument, kept as `model.cfg` so a saved run can rebuild it."""

    w: float = 1.0  # the initial w (the trained one is a weight)


class ParametricAttention(HookedModule):
    """d2l's parametric attention pooling: a(q, k) = -((q - k) w)² / 2, one learned scalar w = 1 / h.

    `forward(queries (Q,), keys (n,), values (n,))` -> f̂ (Q,). Hook points (`run_with_cache`, `run_with_hooks`):
        hook_scores     (Q, n)  a(q, k), -inf on the masked diagonal with exclude_self
        hook_pattern    (Q, n)  the attention weights softmax_i(a(q, x_i)), rows sum to 1
        hook_out        (Q,)    f̂(q)
    """

    def __init__(self, w: float = 1.0):
        super().__init__()
        self.cfg = ParametricAttentionConfig(float(w))
        self.w = nn.Parameter(torch.tensor(float(w)))
        self.hook_scores, self.hook_pattern, self.hook_out = HookPoint(), HookPoint(), HookPoint()

    @property
    def bandwidth(self) -> float:
        return 1.0 / abs(float(self.w.detach()))

    def forward(self, queries: Tensor, keys: Tensor, values: Tensor, exclude_self: bool = False) -> Tensor:
        scores = -(((queries[:, None] - keys[None, :]) * self.w) ** 2) / 2  # (Q, n)
        if exclude_self:
            scores = scores.masked_fill(torch.eye(len(queries), len(keys), dtype=torch.bool), float("-inf"))
        pattern = self.hook_pattern(self.hook_scores(scores).softmax(dim=1))  # (Q, n)
        return self.hook_out(pattern @ values)  # (Q,)


def toy_function(x: Tensor) -> Tensor:
    """d2l's target: f(x) = 2 sin(x) + x^0.8."""
    return 2 * torch.sin(x) + x**0.8


def toy_data(n: int, gen: torch.Generator, noise: float = 0.5, dtype=torch.float64) -> tuple[Tensor, Tensor]:
    """n points x ~ U(0, 5), sorted, y = f(x) + N(0, noise²)."""
    x = torch.sort(torch.rand(n, generator=gen, dtype=dtype) * 5).values
    return x, toy_function(x) + noise * torch.randn(n, generator=gen, dtype=dtype)

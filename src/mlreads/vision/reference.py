"""Slow, obviously correct twins of the vision fast paths, used only by tests."""

from __future__ import annotations

import torch
from torch import Tensor


def local_response_norm_ref(a: Tensor, k: float = 2.0, n: int = 5, alpha: float = 1e-4, beta: float = 0.75) -> Tensor:
    """AlexNet Section 3.3, literally: a loop over kernel maps i, summing squares over j in [i - n//2, i + n//2]."""
    N = a.shape[1]
    out = torch.empty_like(a)
    for i in range(N):
        lo, hi = max(0, i - n // 2), min(N - 1, i + n // 2)
        s = (a[:, lo : hi + 1] ** 2).sum(dim=1)
        out[:, i] = a[:, i] / (k + alpha * s) ** beta
    return out


def grouped_conv_ref(x: Tensor, weight: Tensor, bias: Tensor, groups: int, padding: int) -> Tensor:
    """AlexNet's two GPUs: each tower convolves only its own half of the kernel maps; outputs concatenated."""
    xs = x.chunk(groups, dim=1)
    ws = weight.chunk(groups, dim=0)
    bs = bias.chunk(groups, dim=0)
    return torch.cat([torch.nn.functional.conv2d(xi, wi, bi, padding=padding) for xi, wi, bi in zip(xs, ws, bs)], 1)

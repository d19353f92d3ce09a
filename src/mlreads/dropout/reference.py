"""Slow twins for tests: the inverted-dropout net that `torch.nn.Dropout` implies, built from a paper-convention
`DropoutMLP`, and a per-row max-norm loop."""

from __future__ import annotations

import torch
from torch import Tensor, nn


def inverted_twin(model) -> nn.Sequential:
    """The same net with torch's convention: nn.Dropout(p=1 - p_keep) before each layer (train: r * y / p_keep; test:
    identity). Trained with the same masks, its train outputs are the paper net's with each layer's W divided by p;
    here we copy the paper net's *test* weights, W_test = p W (Section 4), so the eval outputs agree."""
    cfg = model.cfg
    mods: list[nn.Module] = []
    for i, layer in enumerate(model.layers):
        p = cfg.p_keep_input if i == 0 else cfg.p_keep_hidden
        lin = nn.Linear(layer.in_features, layer.out_features, dtype=layer.weight.dtype)
        with torch.no_grad():
            lin.weight.copy_(layer.weight * p)
            lin.bias.copy_(layer.bias)
        mods += [nn.Dropout(1 - p), lin]
        if i < len(model.layers) - 1:
            mods.append(nn.ReLU())
    return nn.Sequential(*mods)


def max_norm_ref(weight: Tensor, c: float) -> Tensor:
    """Row by row: w <- w * c / ||w|| when ||w|| > c."""
    out = weight.clone()
    for i in range(out.shape[0]):
        n = float(torch.linalg.vector_norm(out[i]))
        if n > c:
            out[i] = out[i] * (c / n)
    return out

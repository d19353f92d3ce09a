"""Slow, obviously correct twins of the batched fast paths, for tests only.

Paper: Elhage et al. 2022, "Toy Models of Superposition" (arXiv 2209.10652). Each function loops over instances
(and features) in Python where the fast path uses einsum over the instance axis.
"""

from __future__ import annotations

import torch
from torch import Tensor


def toy_forward_ref(W: Tensor, b: Tensor, x: Tensor, kind: str) -> Tensor:
    """x' = act(W^T act_h(W x) + b) one instance at a time. W (I, m, F), b (I, F), x (B, I, F) -> (B, I, F)."""
    outs = []
    for i in range(W.shape[0]):
        h = x[:, i] @ W[i].T  # (B, m)
        if kind == "hidden_relu":
            h = torch.relu(h)
        o = h @ W[i] + b[i]  # (B, F)
        outs.append(o if kind == "linear" else torch.relu(o))
    return torch.stack(outs, dim=1)


def abs_forward_ref(W_in: Tensor, W_out: Tensor, b: Tensor, x: Tensor) -> Tensor:
    """y' = ReLU(W_2 ReLU(W_1 x) + b) one instance at a time. x (B, I, F) -> (B, I, F)."""
    outs = []
    for i in range(W_in.shape[0]):
        h = torch.relu(x[:, i] @ W_in[i].T)  # (B, H)
        outs.append(torch.relu(h @ W_out[i].T + b[i]))
    return torch.stack(outs, dim=1)


def importance_weighted_mse_ref(out: Tensor, target: Tensor, importance: Tensor) -> Tensor:
    """L_i = (1 / (B F)) sum_b sum_f I_f (x - x')^2, instance by instance. -> (I,)."""
    n_batch, n_inst, n_feat = out.shape
    losses = torch.zeros(n_inst, dtype=out.dtype)
    for i in range(n_inst):
        for f in range(n_feat):
            losses[i] += importance[i, f] * ((target[:, i, f] - out[:, i, f]) ** 2).sum()
    return losses / (n_batch * n_feat)


def feature_dimensionality_ref(W: Tensor) -> Tensor:
    """D_i = ||W_i||^2 / sum_j (W^_i . W_j)^2 with explicit loops over one model W (m, n). -> (n,)."""
    n = W.shape[1]
    out = torch.zeros(n, dtype=W.dtype)
    for i in range(n):
        norm = W[:, i].norm()
        if norm == 0:
            continue
        unit = W[:, i] / norm
        den = sum(float(unit @ W[:, j]) ** 2 for j in range(n))
        out[i] = norm**2 / den
    return out


def superposition_ref(W: Tensor) -> Tensor:
    """sum_{j != i} (W^_i . W_j)^2 with explicit loops over one model W (m, n). -> (n,)."""
    n = W.shape[1]
    out = torch.zeros(n, dtype=W.dtype)
    for i in range(n):
        norm = W[:, i].norm()
        if norm == 0:
            continue
        unit = W[:, i] / norm
        out[i] = sum(float(unit @ W[:, j]) ** 2 for j in range(n) if j != i)
    return out

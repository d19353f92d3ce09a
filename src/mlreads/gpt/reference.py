"""Slow, obviously correct twins of the GPT fast paths, used by the tests.

`attention_ref` is Vaswani et al. 2017 (arXiv:1706.03762) Eq. 1 with the causal mask of Section 3.2.3, written one
query and one key at a time. It is the twin of both `mlreads.gpt.attention` (the explicit, hookable path) and
`torch.nn.functional.scaled_dot_product_attention` (the fast path the model uses when no hook reads the pattern).

Glossary: q, k, v = Q, K, V of one head; P = d_k. Deviations: none.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor


def attention_ref(q: Tensor, k: Tensor, v: Tensor, causal: bool = True) -> tuple[Tensor, Tensor]:
    """q (B, H, Lq, P), k and v (B, H, Lk, P) -> (pattern (B, H, Lq, Lk), z (B, H, Lq, P)), by explicit loops.

    Query i sits at absolute position Lk - Lq + i (the queries are the last Lq positions, as with a KV cache) and,
    when `causal`, attends to keys j <= that position only.
    """
    B, H, Lq, P = q.shape
    Lk = k.shape[2]
    pattern = q.new_zeros(B, H, Lq, Lk)
    z = q.new_zeros(B, H, Lq, P)
    for b in range(B):
        for h in range(H):
            for i in range(Lq):
                keys = [j for j in range(Lk) if not causal or j <= Lk - Lq + i]
                scores = torch.stack([q[b, h, i] @ k[b, h, j] / math.sqrt(P) for j in keys])  # (n_keys,)
                weights = torch.exp(scores - scores.max())
                weights = weights / weights.sum()
                for w, j in zip(weights, keys):
                    pattern[b, h, i, j] = w
                    z[b, h, i] = z[b, h, i] + w * v[b, h, j]
    return pattern, z

"""Scaled dot-product attention as pure functions, one per step of the equation.

Vaswani et al. 2017, "Attention Is All You Need", arXiv:1706.03762, Section 3.2.1, Eq. 1:

    Attention(Q, K, V) = softmax(Q K^T / sqrt(d_k)) V

with the causal ("masked") variant of Section 3.2.3 used by decoder-only models (Radford et al. 2019, GPT-2).
These functions are the explicit, inspectable path: the model uses them whenever a hook reads or edits the
attention pattern, and `torch.nn.functional.scaled_dot_product_attention` otherwise. The circuits package builds its
attention-only transformers on them too.

Glossary (code name -> paper symbol):
    q, k, v        Q, K, V (per head)          d_head (P)   d_k = d_v
    scores         Q K^T / sqrt(d_k)           pattern      softmax(scores), the attention pattern A
    n_heads (H)    h                           z            A V, the per-head output before W^O

Axes (see mlreads.core.shapes): B batch, H heads, L length (Lq queries, Lk keys), P head size.

Deviations: none. Masked entries get -inf before the softmax, as in the paper's "setting to -inf".
"""

from __future__ import annotations

import math

import torch
from torch import Tensor


def causal_mask(L: int, device: torch.device | str | None = None) -> Tensor:
    """Section 3.2.3: position i may attend to j only when j <= i. Returns a bool (L, L), True where allowed."""
    return torch.ones(L, L, dtype=torch.bool, device=device).tril()


def attention_scores(q: Tensor, k: Tensor, scale: float | None = None) -> Tensor:
    """Eq. 1, inside the softmax: Q K^T / sqrt(d_k). q (B, H, Lq, P), k (B, H, Lk, P) -> (B, H, Lq, Lk).

    `scale` replaces 1 / sqrt(d_k) (GPT-2 variants: no scaling, or 1 / (sqrt(d_k) (layer + 1))).
    """
    scores = torch.einsum("bhqp,bhkp->bhqk", q, k)
    return scores / math.sqrt(q.shape[-1]) if scale is None else scores * scale


def attention_pattern(
    q: Tensor, k: Tensor, causal: bool = True, mask: Tensor | None = None, scale: float | None = None
) -> Tensor:
    """Eq. 1: softmax of the (causally masked) scores over keys. Returns (B, H, Lq, Lk).

    When Lq < Lk (the queries are the last Lq positions, as with a KV cache), the mask is aligned to the end:
    query i sits at absolute position Lk - Lq + i and sees keys 0 .. Lk - Lq + i. A boolean `mask` broadcasting to
    (B, H, Lq, Lk), True where allowed, replaces the causal mask (it must carry causality itself, as padding masks
    built by `GPT` do).
    """
    scores = attention_scores(q, k, scale)  # (B, H, Lq, Lk)
    if mask is None and causal:
        Lq, Lk = scores.shape[-2:]
        mask = causal_mask(Lk, device=scores.device)[Lk - Lq :]  # (Lq, Lk)
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    return scores.softmax(dim=-1)


def attend(pattern: Tensor, v: Tensor) -> Tensor:
    """Eq. 1, outside the softmax: A V. pattern (B, H, Lq, Lk), v (B, H, Lk, P) -> (B, H, Lq, P)."""
    return torch.einsum("bhqk,bhkp->bhqp", pattern, v)


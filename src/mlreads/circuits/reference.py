"""Slow, obviously correct twins of the fast paths in this package, used only by tests.

- `attn_only_forward_ref`: the attention-only transformer written as loops over layers, heads and query positions,
  with the softmax taken over the allowed keys only (no -inf masking trick), in float64.
- `composition_score_ref`: ||W_left W_right||_F / (||W_left||_F ||W_right||_F) on dense matrices (Elhage et al. 2021,
  section "Detecting composition").

Deviations: none.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor


def _layernorm_ref(x: Tensor, w: Tensor, eps: float = 1e-5) -> Tensor:
    x = x - x.mean(-1, keepdim=True)
    return x / (x.pow(2).mean(-1, keepdim=True) + eps).sqrt() * w


def attn_only_forward_ref(model, tokens: Tensor) -> Tensor:
    """Logits (B, L, V) of an `AttnOnlyTransformer`, in float64, one head and one query position at a time."""
    cfg = model.cfg
    f = {n: p.detach().double() for n, p in model.named_parameters()}
    B, L = tokens.shape
    resid = f["W_E"][tokens]  # (B, L, D)
    pos = f["W_pos"][:L] if cfg.positional != "none" else torch.zeros_like(resid[0])
    if cfg.positional == "residual":
        resid = resid + pos
    for layer in range(cfg.n_layers):
        x = _layernorm_ref(resid, f[f"blocks.{layer}.ln1.w"]) if cfg.layernorm else resid
        x_qk = x + pos if cfg.positional == "shortformer" else x
        out = torch.zeros_like(resid)
        for h in range(cfg.n_heads):
            W_Q, W_K, W_V, W_O = (f[f"blocks.{layer}.attn.{n}"][h] for n in ("W_Q", "W_K", "W_V", "W_O"))
            for i in range(L):
                q = x_qk[:, i] @ W_Q  # (B, P)
                k = x_qk[:, : i + 1] @ W_K  # (B, i+1, P)
                scores = (k @ q.unsqueeze(-1)).squeeze(-1) / math.sqrt(cfg.d_head)  # (B, i+1)
                a = scores.softmax(-1)
                v = x[:, : i + 1] @ W_V  # (B, i+1, P)
                out[:, i] += (a.unsqueeze(-1) * v).sum(1) @ W_O
        resid = resid + out
    if cfg.layernorm:
        resid = _layernorm_ref(resid, f["ln_final.w"])
    return resid @ f["W_U"]


def composition_score_ref(left: Tensor, right: Tensor) -> Tensor:
    """||left @ right||_F / (||left||_F ||right||_F) for dense (D, D) matrices."""
    return torch.linalg.matrix_norm(left @ right) / torch.linalg.matrix_norm(left) / torch.linalg.matrix_norm(right)

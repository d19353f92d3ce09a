"""Reading an attention-only transformer's weights: QK and OV circuits, the path expansion, copying and composition.

Elhage et al. 2021, "A Mathematical Framework for Transformer Circuits" (transformer-circuits.pub/2021/framework):
    direct path W_U W_E                                  section "Zero-Layer Transformers"
    full QK circuit W_E^T W_QK^h W_E, OV circuit W_U W_OV^h W_E   section "One-Layer ...", "Splitting attention
                                                         head terms into Query-Key and Output-Value circuits"
    path expansion T = Id (x) W_U W_E + sum_h A^h (x) W_U W_OV^h W_E
                     + sum_{h1 < h2} (A^h2 A^h1) (x) W_U W_OV^h2 W_OV^h1 W_E     sections "Path expansion", "Two-Layer"
    copying score sum(lambda) / sum(|lambda|) of the OV circuit's eigenvalues     section "Copying / Primarily
                                                         Positive Eigenvalues"
    composition score ||W_A W_B||_F / (||W_A||_F ||W_B||_F)                      section "Detecting composition"

Convention: TransformerLens's row vectors, so every circuit here is the paper's transposed: `full_ov_circuit(...)[h]`
has rows indexed by the attended (source) token and columns by the output logit; `full_qk_circuit` has rows for the
query token and columns for the key token. All return `FactoredMatrix` where the product would be vocab x vocab.

Deviations: the random-matrix baseline for composition (which the paper subtracts, without fixing its
distribution) uses i.i.d. Gaussian factors of the model's shapes; the score is invariant to their scale.
"""

from __future__ import annotations

import itertools
from typing import Literal

import torch
from torch import Tensor

from mlreads.circuits.factored import FactoredMatrix


def direct_path(model) -> Tensor:
    """-> W_E W_U (V, V): the zero-layer logits, row = current token, column = next-token logit."""
    return model.W_E @ model.W_U


def full_qk_circuit(model, layer: int) -> FactoredMatrix:
    """-> W_E W_QK W_E^T per head (H, V, V): the attention score of query token (row) on key token (column)."""
    return model.W_E @ model.QK[layer] @ model.W_E.T


def positional_qk_circuit(model, layer: int) -> FactoredMatrix:
    """-> W_pos W_QK W_pos^T per head (H, n_ctx, n_ctx): the score from positions alone (shortformer models)."""
    return model.W_pos @ model.QK[layer] @ model.W_pos.T


def full_ov_circuit(model, layer: int) -> FactoredMatrix:
    """-> W_E W_OV W_U per head (H, V, V): the logits a head adds, per token it attends to (row)."""
    return model.W_E @ model.OV[layer] @ model.W_U


def copying_scores(model) -> Tensor:
    """-> (L, H): sum(lambda) / sum(|lambda|) of each head's full OV circuit, in [-1, 1]; near 1 means copying."""
    scores = []
    for layer in range(model.cfg.n_layers):
        lam = full_ov_circuit(model, layer).eigenvalues  # (H, P) complex: the nonzero spectrum of a V x V matrix
        scores.append(lam.sum(-1).real / lam.abs().sum(-1))
    return torch.stack(scores) if scores else model.W_E.new_zeros(0, model.cfg.n_heads)


def _ov_left(model) -> tuple[Tensor, Tensor]:
    return model.W_V, model.W_O  # (L, H, D, P), (L, H, P, D)


def _right(model, kind: str) -> tuple[Tensor, Tensor]:
    if kind == "Q":  # the earlier head writes into the query side: x W_OV^1 W_QK^2 x_key^T
        return model.W_Q, model.W_K.transpose(-2, -1)
    if kind == "K":  # ... into the key side: x_query W_QK^2 (x W_OV^1)^T, i.e. W_OV^1 W_QK^2T
        return model.W_K, model.W_Q.transpose(-2, -1)
    if kind == "V":  # ... into the value side: x W_OV^1 W_OV^2
        return model.W_V, model.W_O
    raise ValueError(f"kind must be 'Q', 'K' or 'V', not {kind!r}")


def pairwise_composition(left: tuple[Tensor, Tensor], right: tuple[Tensor, Tensor]) -> Tensor:
    """left factors (*Ls, D, P), (*Ls, P, D), right factors (*Rs, D, P'), (*Rs, P', D) -> (*Ls, *Rs):
    ||M1 M2||_F / (||M1||_F ||M2||_F) for every (left, right) pair."""
    A1, B1 = left
    A2, B2 = right
    n_l, n_r = A1.ndim - 2, A2.ndim - 2
    ext_l = (...,) + (None,) * n_r + (slice(None), slice(None))  # (*Ls, 1..., D, P)
    ext_r = (None,) * n_l + (...,)  # (1..., *Rs, D, P')
    M1 = FactoredMatrix(A1[ext_l], B1[ext_l])
    M2 = FactoredMatrix(A2[ext_r], B2[ext_r])
    product = FactoredMatrix(M1.A @ (M1.B @ M2.A), M2.B)  # the inner (P, P') block keeps it low-rank
    return product.norm() / M1.norm() / M2.norm()


def composition_scores(model, kind: Literal["Q", "K", "V"]) -> Tensor:
    """-> (L, H, L, H): score[l1, h1, l2, h2] of head (l1, h1)'s OV feeding head (l2, h2)'s Q, K or V input; zero unless
    l1 < l2. Same definition as TransformerLens `all_composition_scores(mode)`."""
    scores = pairwise_composition(_ov_left(model), _right(model, kind))  # (L, H, L, H)
    layer = torch.arange(model.cfg.n_layers, device=scores.device)
    earlier = layer[:, None, None, None] < layer[None, None, :, None]  # (L, 1, L, 1)
    return torch.where(earlier, scores, torch.zeros_like(scores))


def composition_baseline(model, kind: Literal["Q", "K", "V"], n_samples: int = 200, seed: int = 0) -> float:
    """-> a float: the mean composition score of random matrices with the model's factor shapes (what the paper subtracts)."""
    D, P = model.cfg.d_model, model.cfg.d_head
    g = torch.Generator().manual_seed(seed)
    _right(model, kind)  # validates `kind`; every kind has factors (D, P) and (P, D)
    factors = [torch.randn(n_samples, *shape, generator=g, dtype=torch.float64) for shape in [(D, P), (P, D)] * 2]
    left = FactoredMatrix(factors[0], factors[1])
    right = FactoredMatrix(factors[2], factors[3])
    product = FactoredMatrix(left.A @ (left.B @ right.A), right.B)
    return float((product.norm() / left.norm() / right.norm()).mean())


def path_expansion(model, tokens: Tensor) -> dict[tuple[tuple[int, int], ...], Tensor]:
    """tokens (B, L) -> {path: logits term (B, L, V)}: the logits split into one term per path through the residual
    stream.

    The key () is the direct path; ((l, h),) a single head; ((l1, h1), (l2, h2), ...) with l1 < l2 < ... a virtual
    head (V-composition). The attention patterns are read from a forward pass, so the terms sum to the logits
    exactly; this needs a model without LayerNorm (the expansion is linear in the residual stream).
    """
    if getattr(model.cfg, "layernorm", False):
        raise ValueError("path_expansion needs a model without LayerNorm")
    _, cache = model.run_with_cache(tokens, names_filter=lambda n: n.endswith("hook_pattern") or n == "blocks.0.hook_resid_pre")
    if model.cfg.n_layers == 0:
        return {(): model(tokens)}
    x0 = cache["blocks.0.hook_resid_pre"]  # (B, L, D): tokens plus positions when they enter the residual stream
    W_V, W_O = model.W_V.detach(), model.W_O.detach()
    terms = {}
    L, H = model.cfg.n_layers, model.cfg.n_heads
    heads = [(layer, h) for layer in range(L) for h in range(H)]
    for n in range(L + 1):
        for path in itertools.combinations(heads, n):
            if any(a[0] >= b[0] for a, b in itertools.pairwise(path)):
                continue  # one head per layer, in layer order
            x = x0
            for layer, h in path:
                pattern = cache[f"blocks.{layer}.attn.hook_pattern"][:, h]  # (B, L, L)
                x = pattern @ (x @ W_V[layer, h] @ W_O[layer, h])  # (B, L, D)
            terms[path] = x @ model.W_U.detach()  # (B, L, V)
    return terms

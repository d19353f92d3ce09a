"""Attention-only transformers, the objects of study of Elhage et al. 2021, "A Mathematical Framework for Transformer
Circuits" (transformer-circuits.pub/2021/framework), sections "Zero-Layer Transformers", "One-Layer Attention-Only
Transformers" and "Two-Layer Attention-Only Transformers".

A model is an embedding, `n_layers` attention layers that each add their heads' outputs to the residual stream, and an
unembedding; no MLPs and no biases. Weights are stored per head in the TransformerLens layout, so analysis code reads
`W_Q[l, h]` directly and the row-vector convention x @ W_V @ W_O holds throughout.

Glossary (code name -> paper symbol; the paper uses column vectors, so each matrix here is the paper's transposed):
    W_E (V, D)            W_E^T, token embedding         W_pos (n_ctx, D)   positional embedding
    W_Q, W_K, W_V         W_Q^h, W_K^h, W_V^h per head   W_O (L, H, P, D)   W_O^h
    W_U (D, V)            W_U^T, unembedding             QK = W_Q W_K^T     W_QK^h = W_Q^hT W_K^h (transposed)
    OV = W_V W_O          W_OV^h = W_O^h W_V^h (transposed)
    pattern (B, H, Lq, Lk)   A^h, the attention pattern  z (B, L, H, P)     the head's value mix A^h (x W_V^h)
    d_head (P)            the head size                  resid              the residual stream x_i

Positional information (config `positional`):
    "residual":     W_pos is added to the residual stream, as in GPT-2 (and TransformerLens "standard").
    "shortformer":  W_pos is added only to the inputs of queries and keys, never to values or the residual stream:
                    the paper's footnote 15 (Press et al. 2020, "Shortformer"); TransformerLens "shortformer". The
                    OV and direct paths then see tokens only, which is what makes the path expansion exact.
    "none":         no positional embedding.

Deviations: LayerNorm (optional, off by default as in the paper's analysis) has a learned gain and no bias, keeping
"no biases" true everywhere. The attention math is `mlreads.gpt.attention` (scaled by 1/sqrt(d_head), causal).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor, nn

from mlreads.circuits.factored import FactoredMatrix
from mlreads.core.nn.hooks import HookedModule, HookPoint
from mlreads.gpt import attend, attention_pattern


@dataclass(frozen=True)
class AttnOnlyConfig:
    n_layers: int = 2  # 0 gives the bigram model W_E W_U
    d_model: int = 64
    n_heads: int = 4
    d_head: int = 16  # P
    d_vocab: int = 64
    n_ctx: int = 128  # the longest sequence W_pos covers
    positional: Literal["residual", "shortformer", "none"] = "shortformer"
    layernorm: bool = False
    init_std: float = 0.02  # normal init of every weight matrix (GPT-2's)


class LayerNorm(nn.Module):
    """LayerNorm with a gain and no bias; hook_scale holds the per-position divisor, as in TransformerLens."""

    def __init__(self, d_model: int, eps: float = 1e-5):
        super().__init__()
        self.w = nn.Parameter(torch.ones(d_model))
        self.eps = eps
        self.hook_scale = HookPoint()
        self.hook_normalized = HookPoint()

    def forward(self, x: Tensor) -> Tensor:
        x = x - x.mean(-1, keepdim=True)  # (B, L, D)
        scale = self.hook_scale((x.pow(2).mean(-1, keepdim=True) + self.eps).sqrt())  # (B, L, 1)
        return self.hook_normalized(x / scale) * self.w


class Attention(nn.Module):
    """One layer of H heads: h(x) = sum_h A^h (x W_V^h) W_O^h, with A^h = softmax(x W_Q^h (x W_K^h)^T / sqrt(P))."""

    def __init__(self, cfg: AttnOnlyConfig):
        super().__init__()
        H, D, P = cfg.n_heads, cfg.d_model, cfg.d_head
        self.W_Q = nn.Parameter(torch.empty(H, D, P))
        self.W_K = nn.Parameter(torch.empty(H, D, P))
        self.W_V = nn.Parameter(torch.empty(H, D, P))
        self.W_O = nn.Parameter(torch.empty(H, P, D))
        self.hook_q = HookPoint()  # (B, L, H, P)
        self.hook_k = HookPoint()  # (B, L, H, P)
        self.hook_v = HookPoint()  # (B, L, H, P)
        self.hook_pattern = HookPoint()  # (B, H, Lq, Lk)
        self.hook_z = HookPoint()  # (B, L, H, P)

    def forward(self, x_qk: Tensor, x_v: Tensor) -> Tensor:
        """x_qk (B, L, D) feeds queries and keys, x_v (B, L, D) feeds values (they differ only for shortformer
        positions) -> the heads' summed output (B, L, D)."""
        q = self.hook_q(torch.einsum("bld,hdp->blhp", x_qk, self.W_Q))  # (B, L, H, P)
        k = self.hook_k(torch.einsum("bld,hdp->blhp", x_qk, self.W_K))  # (B, L, H, P)
        v = self.hook_v(torch.einsum("bld,hdp->blhp", x_v, self.W_V))  # (B, L, H, P)
        pattern = attention_pattern(q.transpose(1, 2), k.transpose(1, 2), causal=True)  # (B, H, L, L)
        pattern = self.hook_pattern(pattern)
        z = self.hook_z(attend(pattern, v.transpose(1, 2)).transpose(1, 2))  # (B, L, H, P)
        return torch.einsum("blhp,hpd->bld", z, self.W_O)  # (B, L, D), the sum over heads


class Block(nn.Module):
    """Section "Residual stream": x_{l+1} = x_l + sum_h h(x_l). No MLP."""

    def __init__(self, cfg: AttnOnlyConfig):
        super().__init__()
        self.ln1 = LayerNorm(cfg.d_model) if cfg.layernorm else nn.Identity()
        self.attn = Attention(cfg)
        self.hook_resid_pre = HookPoint()
        self.hook_attn_out = HookPoint()
        self.hook_resid_post = HookPoint()

    def forward(self, resid: Tensor, pos: Tensor | None) -> Tensor:
        """resid (B, L, D), pos (B, L, D) or None (added to queries and keys only) -> resid (B, L, D)."""
        resid = self.hook_resid_pre(resid)  # (B, L, D)
        x = self.ln1(resid)
        x_qk = x if pos is None else x + pos  # shortformer: positions reach queries and keys only
        out = self.hook_attn_out(self.attn(x_qk, x))  # (B, L, D)
        return self.hook_resid_post(resid + out)


class AttnOnlyTransformer(HookedModule):
    """tokens (B, L) -> logits (B, L, V). See the module docstring; weights in the TransformerLens layout.

    Weights are drawn from `generator` when one is given (the global RNG otherwise; see `reset_parameters`).

    Hook points (`run_with_cache`, `run_with_hooks`; TransformerLens names):
        hook_embed, hook_pos_embed                          (B, L, D)  hook_pos_embed unless positional="none"
        blocks.{l}.hook_resid_pre / hook_attn_out / hook_resid_post   (B, L, D)
        blocks.{l}.attn.hook_q / hook_k / hook_v / hook_z   (B, L, H, P)
        blocks.{l}.attn.hook_pattern                        (B, H, Lq, Lk)
        blocks.{l}.ln1.hook_scale (B, L, 1), blocks.{l}.ln1.hook_normalized (B, L, D), and ln_final's: only with
        layernorm=True
    """

    def __init__(self, cfg: AttnOnlyConfig, generator: torch.Generator | None = None):
        super().__init__()
        self.cfg = cfg
        self.W_E = nn.Parameter(torch.empty(cfg.d_vocab, cfg.d_model))
        self.W_pos = nn.Parameter(torch.empty(cfg.n_ctx, cfg.d_model)) if cfg.positional != "none" else None
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.n_layers))
        self.ln_final = LayerNorm(cfg.d_model) if cfg.layernorm else nn.Identity()
        self.W_U = nn.Parameter(torch.empty(cfg.d_model, cfg.d_vocab))
        self.hook_embed = HookPoint()
        self.hook_pos_embed = HookPoint()
        self.reset_parameters(generator)

    def reset_parameters(self, generator: torch.Generator | None = None) -> None:
        """Normal(0, init_std) for every matrix, gains at 1; `generator` keeps the global RNG untouched."""
        with torch.no_grad():
            for name, p in self.named_parameters():
                if p.ndim == 1:
                    p.fill_(1.0)
                else:
                    p.copy_(torch.randn(p.shape, generator=generator) * self.cfg.init_std)

    def forward(self, tokens: Tensor) -> Tensor:
        """tokens (B, L) ids, L <= n_ctx -> logits (B, L, V)."""
        L = tokens.shape[1]
        if L > self.cfg.n_ctx:
            raise ValueError(f"sequence length {L} exceeds n_ctx={self.cfg.n_ctx}")
        resid = self.hook_embed(self.W_E[tokens])  # (B, L, D)
        pos = None
        if self.W_pos is not None:
            pos = self.hook_pos_embed(self.W_pos[:L].expand_as(resid))  # (B, L, D)
            if self.cfg.positional == "residual":
                resid, pos = resid + pos, None
        for block in self.blocks:
            resid = block(resid, pos)
        return self.ln_final(resid) @ self.W_U  # (B, L, V)

    # ----- weights in the TransformerLens convention --------------------------------------------------------------
    def _stack(self, name: str, inner: tuple[int, int]) -> Tensor:
        if not self.blocks:
            return self.W_E.new_zeros((0, self.cfg.n_heads) + inner)
        return torch.stack([getattr(b.attn, name) for b in self.blocks])

    @property
    def W_Q(self) -> Tensor:  # (L, H, D, P)
        return self._stack("W_Q", (self.cfg.d_model, self.cfg.d_head))

    @property
    def W_K(self) -> Tensor:  # (L, H, D, P)
        return self._stack("W_K", (self.cfg.d_model, self.cfg.d_head))

    @property
    def W_V(self) -> Tensor:  # (L, H, D, P)
        return self._stack("W_V", (self.cfg.d_model, self.cfg.d_head))

    @property
    def W_O(self) -> Tensor:  # (L, H, P, D)
        return self._stack("W_O", (self.cfg.d_head, self.cfg.d_model))

    @property
    def QK(self) -> FactoredMatrix:
        """W_Q W_K^T per head, (L, H, D, D): the bilinear form x_query QK x_key^T that makes the attention score."""
        return FactoredMatrix(self.W_Q, self.W_K.transpose(-2, -1))

    @property
    def OV(self) -> FactoredMatrix:
        """W_V W_O per head, (L, H, D, D): what a head writes, x_source OV, when it attends to x_source."""
        return FactoredMatrix(self.W_V, self.W_O)

    @property
    def n_heads(self) -> int:
        return self.cfg.n_heads

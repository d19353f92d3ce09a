"""A GPT-2-style decoder-only Transformer.

Vaswani et al. 2017, "Attention Is All You Need", arXiv:1706.03762, Section 3 (attention, Eq. 1; multi-head
attention, Section 3.2.2; position-wise feed-forward, Eq. 2; embeddings, Section 3.4), used as a decoder only, with the
GPT-2 changes of Radford et al. 2019, "Language Models are Unsupervised Multitask Learners", Section 2.3: layer norm
moved to the input of each sub-block (pre-LN), a final layer norm after the last block, learned position embeddings,
GELU (Hendrycks & Gimpel 2016, arXiv:1606.08415), and residual projections initialised at 0.02 / sqrt(2 n_layers).
The token embedding is tied to the output projection (Press & Wolf 2017, cited in Vaswani Section 3.4).

Parameter names map 1:1 onto the GPT-2 checkpoint (`wte`, `wpe`, `ln_1`, `attn.c_attn`, `attn.c_proj`, `ln_2`,
`mlp.c_fc`, `mlp.c_proj`); blocks live at `blocks.{l}` and the final norm at `ln_final` so that hook names follow
TransformerLens (see `GPT` for the list).

Glossary (code name -> paper symbol):
    d_model (D)      d_model                   n_heads (H)     h
    d_head (P)       d_k = d_v = d_model / h   4 * d_model     d_ff (Eq. 2)
    c_attn           [W^Q W^K W^V] for all heads, fused     c_proj (attn)   W^O
    mlp.c_fc         W_1, b_1 (Eq. 2)          mlp.c_proj      W_2, b_2 (Eq. 2)
    wte              the input embedding, and (tied) the pre-softmax linear transformation
    wpe              learned positional embedding (GPT-2; Vaswani 2017 Section 3.5 tried it too, Table 3 row E)
    hook_pattern     softmax(Q K^T / sqrt(d_k)) per head, (B, H, Lq, Lk)

Padding: `forward(idx, attention_mask)` and `generate(..., attention_mask=)` take transformers' (B, L) mask, 1 for
tokens and 0 for (left) padding. Keys at padding are masked out; each padding query attends to itself only (so no
row is empty); positions count real tokens only (cumsum of the mask minus 1, transformers' generation rule), so a
left-padded row gives the logits of the same row without padding.

Deviations:
    - GELU instead of the paper's ReLU in Eq. 2 (GPT-2's choice); `gelu="tanh"` is GPT-2's "gelu_new" approximation.
      `act_fn` selects any parameter-free activation transformers offers (`hf.ACTIVATIONS`) for loaded models.
    - With an attention mask and no `position_ids`, positions come from the mask (above); transformers' forward
      would number padded positions 0..L-1 unless given position_ids (its `generate` derives them as we do).
    - Pre-LN instead of the paper's post-LN (GPT-2's choice).
    - Learned position embeddings instead of sinusoids (GPT-2's choice).
    - The output logits are not scaled; the embedding is not multiplied by sqrt(d_model) (GPT-2's choice).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from mlreads.core.nn.activations import ACTIVATIONS
from mlreads.core.nn.hooks import HookedModule, HookPoint
from mlreads.gpt.attention import attend, attention_pattern, causal_mask

KV = tuple[Tensor, Tensor]  # (k, v), each (B, H, L, P)


@dataclass(frozen=True)
class GPTConfig:
    d_vocab: int = 65  # V (GPT-2: vocab_size)
    n_ctx: int = 64  # the longest context, in tokens (GPT-2: n_positions)
    n_layers: int = 4  # (GPT-2: n_layer)
    n_heads: int = 4  # H (GPT-2: n_head)
    d_model: int = 128  # D
    dropout: float = 0.0  # after embeddings, on the attention pattern, and on each residual branch
    bias: bool = True  # biases in Linear layers and LayerNorms (GPT-2 has them)
    gelu: Literal["tanh", "exact"] = "tanh"  # "tanh" = GPT-2's gelu_new; "exact" = erf GELU
    layer_norm_eps: float = 1e-5
    d_ff: int = 0  # MLP width, d_ff of Eq. 2 (GPT-2: n_inner); 0 means 4 * d_model
    act_fn: str | None = None  # a name in ACTIVATIONS (transformers' activation_function); None: GELU per `gelu`
    scale_attn: bool = True  # divide scores by sqrt(d_head), Eq. 1 (GPT-2: scale_attn_weights)
    attn_scale_by_inverse_layer: bool = False  # also by (layer + 1) (GPT-2: scale_attn_by_inverse_layer_idx)
    upcast_attn: bool = False  # scores and softmax in float32 for half models (GPT-2: reorder_and_upcast_attn)

    def __post_init__(self):
        if self.d_model % self.n_heads:
            raise ValueError(f"d_model={self.d_model} is not divisible by n_heads={self.n_heads}")
        if self.act_fn is not None and self.act_fn not in ACTIVATIONS:
            raise ValueError(f"act_fn={self.act_fn!r} is not one of {sorted(ACTIVATIONS)}")

    @property
    def d_head(self) -> int:  # P = d_k = d_v
        return self.d_model // self.n_heads

    @property
    def d_mlp(self) -> int:  # d_ff in Eq. 2
        return self.d_ff or 4 * self.d_model

    def attn_scale(self, layer: int) -> float:
        """The factor on Q K^T in layer `layer` (0-based): 1/sqrt(d_head) in Eq. 1, GPT-2's variants otherwise."""
        scale = 1 / math.sqrt(self.d_head) if self.scale_attn else 1.0
        return scale / (layer + 1) if self.attn_scale_by_inverse_layer else scale


class LayerNorm(nn.LayerNorm):
    """LayerNorm (Ba et al. 2016) with a hook on its output, like TransformerLens' `hook_normalized`."""

    def __init__(self, cfg: GPTConfig):
        super().__init__(cfg.d_model, eps=cfg.layer_norm_eps, bias=cfg.bias)
        self.hook_normalized = HookPoint()

    def forward(self, x: Tensor) -> Tensor:
        return self.hook_normalized(super().forward(x))


class CausalSelfAttention(nn.Module):
    """Masked multi-head self-attention, Section 3.2.2 with the mask of Section 3.2.3.

    Fast path: `F.scaled_dot_product_attention`. When a hook is attached to `hook_pattern`, or `explicit` is set,
    the pattern is computed with `mlreads.gpt.attention` so the hook can read or replace it.
    """

    def __init__(self, cfg: GPTConfig, layer: int = 0):
        super().__init__()
        self.n_heads, self.d_head = cfg.n_heads, cfg.d_head
        self.scale, self.upcast = cfg.attn_scale(layer), cfg.upcast_attn
        self.dropout = cfg.dropout
        self.c_attn = nn.Linear(cfg.d_model, 3 * cfg.d_model, bias=cfg.bias)
        self.c_proj = nn.Linear(cfg.d_model, cfg.d_model, bias=cfg.bias)
        self.attn_dropout = nn.Dropout(cfg.dropout)
        self.resid_dropout = nn.Dropout(cfg.dropout)
        self.explicit = False  # force the explicit (hookable) pattern path
        self.hook_q, self.hook_k, self.hook_v = HookPoint(), HookPoint(), HookPoint()  # (B, L, H, P)
        self.hook_pattern = HookPoint()  # (B, H, Lq, Lk)
        self.hook_z = HookPoint()  # (B, L, H, P)

    def _explicit_path(self) -> bool:
        return self.explicit or self.hook_pattern.has_hooks

    def forward(self, x: Tensor, past: KV | None = None, mask: Tensor | None = None) -> tuple[Tensor, KV]:
        """x (B, Lq, D); past (k, v) of the earlier positions, or None; mask (B, 1, Lq, Lk) bool, True where a query
        may attend (causality included), or None for the plain causal mask. Returns (y (B, Lq, D), (k, v) so far)."""
        B, Lq, D = x.shape
        q, k, v = self.c_attn(x).split(D, dim=2)  # 3 x (B, Lq, D)
        q = self.hook_q(q.view(B, Lq, self.n_heads, self.d_head)).transpose(1, 2)  # (B, H, Lq, P)
        k = self.hook_k(k.view(B, Lq, self.n_heads, self.d_head)).transpose(1, 2)  # (B, H, Lq, P)
        v = self.hook_v(v.view(B, Lq, self.n_heads, self.d_head)).transpose(1, 2)  # (B, H, Lq, P)
        if past is not None:
            k = torch.cat([past[0], k], dim=2)  # (B, H, Lk, P)
            v = torch.cat([past[1], v], dim=2)  # (B, H, Lk, P)
        Lk = k.shape[2]
        if mask is None and Lq != Lk:  # KV cache: SDPA's is_causal aligns the mask to the start, ours to the end
            mask = causal_mask(Lk, device=x.device)[Lk - Lq :]  # (Lq, Lk)
        upcast = self.upcast and q.dtype in (torch.float16, torch.bfloat16)
        if self._explicit_path() or upcast:
            qs, ks = (q.float(), k.float()) if upcast else (q, k)  # GPT-2's reorder_and_upcast_attn: fp32 softmax
            pattern = attention_pattern(qs, ks, causal=True, mask=mask, scale=self.scale).to(v.dtype)
            pattern = self.hook_pattern(pattern)  # (B, H, Lq, Lk)
            z = attend(self.attn_dropout(pattern), v)  # (B, H, Lq, P)
        else:
            p = self.dropout if self.training else 0.0
            if mask is None:
                z = F.scaled_dot_product_attention(q, k, v, dropout_p=p, is_causal=True, scale=self.scale)
            else:
                z = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=p, scale=self.scale)
        z = self.hook_z(z.transpose(1, 2))  # (B, Lq, H, P)
        y = self.resid_dropout(self.c_proj(z.reshape(B, Lq, D)))  # (B, Lq, D), Concat(heads) W^O
        return y, (k, v)


class MLP(nn.Module):
    """The position-wise feed-forward network, Eq. 2, with GELU in place of ReLU."""

    def __init__(self, cfg: GPTConfig):
        super().__init__()
        self.c_fc = nn.Linear(cfg.d_model, cfg.d_mlp, bias=cfg.bias)
        self.c_proj = nn.Linear(cfg.d_mlp, cfg.d_model, bias=cfg.bias)
        self.dropout = nn.Dropout(cfg.dropout)
        self.act_fn = cfg.act_fn
        self.approximate = "tanh" if cfg.gelu == "tanh" else "none"
        self.hook_pre, self.hook_post = HookPoint(), HookPoint()  # (B, L, d_mlp)

    def forward(self, x: Tensor) -> Tensor:
        """x (B, L, D) -> (B, L, D)."""
        h = self.hook_pre(self.c_fc(x))  # (B, L, d_mlp)
        h = ACTIVATIONS[self.act_fn](h) if self.act_fn else F.gelu(h, approximate=self.approximate)
        h = self.hook_post(h)  # (B, L, d_mlp)
        return self.dropout(self.c_proj(h))  # (B, L, D)


class Block(nn.Module):
    """One pre-LN decoder block: x + Attn(LN(x)), then x + MLP(LN(x)) (Radford 2019, Section 2.3)."""

    def __init__(self, cfg: GPTConfig, layer: int = 0):
        super().__init__()
        self.ln_1 = LayerNorm(cfg)
        self.attn = CausalSelfAttention(cfg, layer)
        self.ln_2 = LayerNorm(cfg)
        self.mlp = MLP(cfg)
        self.hook_resid_pre, self.hook_resid_mid, self.hook_resid_post = HookPoint(), HookPoint(), HookPoint()
        self.hook_attn_out, self.hook_mlp_out = HookPoint(), HookPoint()

    def forward(self, x: Tensor, past: KV | None = None, mask: Tensor | None = None) -> tuple[Tensor, KV]:
        """x (B, L, D), past (k, v) or None, mask (B, Lk) key padding or None -> (x (B, L, D), (k, v) so far, each
        (B, H, Lk, P))."""
        x = self.hook_resid_pre(x)  # (B, L, D)
        attn_out, kv = self.attn(self.ln_1(x), past, mask)
        x = self.hook_resid_mid(x + self.hook_attn_out(attn_out))  # (B, L, D)
        x = self.hook_resid_post(x + self.hook_mlp_out(self.mlp(self.ln_2(x))))  # (B, L, D)
        return x, kv


class GPT(HookedModule):
    """The decoder: embeddings, `n_layers` blocks, a final LayerNorm and the tied unembedding.

    Hook points (TransformerLens names):
        hook_embed, hook_pos_embed                                  (B, L, D)
        blocks.{l}.hook_resid_pre / hook_resid_mid / hook_resid_post  (B, L, D)
        blocks.{l}.attn.hook_q / hook_k / hook_v / hook_z             (B, L, H, P)
        blocks.{l}.attn.hook_pattern                                  (B, H, Lq, Lk)
        blocks.{l}.hook_attn_out, blocks.{l}.hook_mlp_out             (B, L, D)
        blocks.{l}.mlp.hook_pre / hook_post                           (B, L, d_mlp)
        blocks.{l}.ln_1.hook_normalized, ln_2.hook_normalized, ln_final.hook_normalized  (B, L, D)
    Attaching a hook to hook_pattern (or setting `blocks[l].attn.explicit = True`) switches that layer from SDPA to
    the explicit pattern of `mlreads.gpt.attention`; both give the same logits.
    """

    def __init__(self, cfg: GPTConfig):
        super().__init__()
        self.cfg = cfg
        self.wte = nn.Embedding(cfg.d_vocab, cfg.d_model)
        self.wpe = nn.Embedding(cfg.n_ctx, cfg.d_model)
        self.drop = nn.Dropout(cfg.dropout)
        self.blocks = nn.ModuleList(Block(cfg, layer) for layer in range(cfg.n_layers))
        self.ln_final = LayerNorm(cfg)
        self.hook_embed, self.hook_pos_embed = HookPoint(), HookPoint()
        self.apply(self._init_weights)
        for name, p in self.named_parameters():  # GPT-2: residual projections scaled by 1/sqrt(2 n_layers)
            if name.endswith("c_proj.weight"):
                nn.init.normal_(p, mean=0.0, std=0.02 / math.sqrt(2 * cfg.n_layers))

    @staticmethod
    def _init_weights(module: nn.Module) -> None:
        if isinstance(module, nn.Linear | nn.Embedding):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)
        if isinstance(module, nn.Linear) and module.bias is not None:
            nn.init.zeros_(module.bias)

    @property
    def W_U(self) -> Tensor:
        """The unembedding (D, V): the transpose of the tied token embedding."""
        return self.wte.weight.T

    def num_params(self, non_embedding: bool = False) -> int:
        """Parameter count (the tied embedding counted once); `non_embedding` leaves out wte and wpe, as in
        Kaplan et al. 2020."""
        n = sum(p.numel() for p in self.parameters())
        if non_embedding:
            n -= self.wte.weight.numel() + self.wpe.weight.numel()
        return n

    def forward(
        self, idx: Tensor, attention_mask: Tensor | None = None, position_ids: Tensor | None = None
    ) -> Tensor:
        """idx (B, L) token ids -> logits (B, L, V) for every position.

        attention_mask (B, L): transformers' padding mask, 1 for tokens and 0 for padding (see the module docstring);
        position_ids (B, L) or (L,): explicit positions; by default 0..L-1, or the mask's count of real tokens.
        """
        return self._forward(idx, attention_mask=attention_mask, position_ids=position_ids)[0]

    @staticmethod
    def padding_mask(attention_mask: Tensor, Lq: int) -> Tensor:
        """(B, Lk) 0/1 padding mask -> (B, 1, Lq, Lk) bool for the last Lq positions: causal, no padding keys, and
        each query always sees itself (a padding query sees only itself, so no softmax row is empty)."""
        Lk = attention_mask.shape[1]
        device = attention_mask.device
        allowed = causal_mask(Lk, device=device)[Lk - Lq :] & attention_mask.bool()[:, None, None, :]  # (B, 1, Lq, Lk)
        own = torch.arange(Lq, device=device)
        allowed[..., own, own + Lk - Lq] = True
        return allowed

    def _forward(
        self,
        idx: Tensor,
        past: list[KV] | None = None,
        attention_mask: Tensor | None = None,
        position_ids: Tensor | None = None,
    ) -> tuple[Tensor, list[KV]]:
        """Logits and the keys/values so far; attention_mask covers the past and the new tokens, (B, start + L)."""
        B, L = idx.shape
        start = 0 if past is None else past[0][0].shape[2]
        mask = None
        if attention_mask is not None:
            if attention_mask.shape != (B, start + L):
                raise ValueError(f"attention_mask has shape {tuple(attention_mask.shape)}, expected {(B, start + L)}")
            mask = self.padding_mask(attention_mask, L)
            if position_ids is None:  # count real tokens only: a left-padded row sees the positions it has unpadded
                position_ids = (attention_mask.long().cumsum(-1) - 1).clamp_min(0)[:, start:]  # (B, L)
        if position_ids is None:
            if start + L > self.cfg.n_ctx:
                raise ValueError(f"sequence of {start + L} tokens is longer than n_ctx={self.cfg.n_ctx}")
            pos = torch.arange(start, start + L, device=idx.device)  # (L,)
            pos_embed = self.wpe(pos).expand(B, L, self.cfg.d_model)  # (B, L, D), a view, as TransformerLens shapes it
        else:
            if int(position_ids.max()) >= self.cfg.n_ctx:
                raise ValueError(f"position {int(position_ids.max())} is beyond n_ctx={self.cfg.n_ctx}")
            pos_embed = self.wpe(position_ids).expand(B, L, self.cfg.d_model)  # (B, L, D)
        x = self.drop(self.hook_embed(self.wte(idx)) + self.hook_pos_embed(pos_embed))  # (B, L, D)
        present = []
        for l, block in enumerate(self.blocks):
            x, kv = block(x, None if past is None else past[l], mask)  # (B, L, D)
            present.append(kv)
        x = self.ln_final(x)  # (B, L, D)
        return F.linear(x, self.wte.weight), present  # (B, L, V), tied unembedding

    @torch.no_grad()
    def generate(
        self,
        idx: Tensor,
        max_new_tokens: int,
        temperature: float = 1.0,
        top_k: int | None = None,
        generator: torch.Generator | None = None,
        use_cache: bool = True,
        attention_mask: Tensor | None = None,
        do_sample: bool | None = None,
    ) -> Tensor:
        """Append `max_new_tokens` tokens to idx (B, L0); returns (B, L0 + max_new_tokens).

        Called as nanoGPT's `generate(idx, max_new_tokens, temperature=1.0, top_k=None)` (positionally or by
        keyword). Sampling is the default (nanoGPT's); `temperature=0` or `do_sample=False` (transformers' keyword)
        decode greedily. `attention_mask` (B, L0), 1 for tokens and 0 for left padding, lets prompts of different
        lengths share a batch: each row then continues exactly as it would alone (greedy decoding gives the same
        tokens; sampling draws from the same distributions).

        The context is cropped to the last n_ctx tokens. With `use_cache`, keys and values of earlier positions
        are kept (a KV cache) and each step runs only the new token; once the context would overflow n_ctx,
        the positions shift, so the cache is rebuilt from the cropped context, exactly as the no-cache path sees it.
        Call `model.eval()` first if the model has dropout. Sampling draws from `generator` (which must live on the
        model's device) when one is given, else from the global RNG.
        """
        greedy = temperature == 0 if do_sample is None else not do_sample
        mask = attention_mask
        past: list[KV] | None = None
        for _ in range(max_new_tokens):
            if use_cache and past is not None and past[0][0].shape[2] < self.cfg.n_ctx:
                logits, past = self._forward(idx[:, -1:], past, attention_mask=mask)  # one new position
            else:
                crop = None if mask is None else mask[:, -self.cfg.n_ctx :]
                logits, past = self._forward(idx[:, -self.cfg.n_ctx :], attention_mask=crop)
                past = past if use_cache else None
                if mask is not None and use_cache:
                    mask = crop  # the cache now holds the cropped context
            logits = logits[:, -1, :]  # (B, V)
            if greedy:
                nxt = logits.argmax(dim=-1, keepdim=True)  # (B, 1)
            else:
                logits = logits / temperature
                if top_k is not None:
                    kth = torch.topk(logits, min(top_k, logits.shape[-1])).values[:, -1:]  # (B, 1)
                    logits = logits.masked_fill(logits < kth, float("-inf"))
                probs = logits.softmax(dim=-1)  # (B, V)
                nxt = torch.multinomial(probs, 1, generator=generator)  # (B, 1)
            idx = torch.cat([idx, nxt], dim=1)
            if mask is not None:
                mask = torch.cat([mask, mask.new_ones(mask.shape[0], 1)], dim=1)
        return idx

    @classmethod
    def from_hf(cls, hf_model: Any) -> GPT:
        """A GPT with the config and weights of a transformers `GPT2LMHeadModel` (or bare `GPT2Model`), or of the
        folder such a model was saved to with `save_pretrained` (read offline; hub names are refused). The mapping
        of config fields and weights, and what is refused, is in `mlreads.gpt.hf.from_hf`."""
        from mlreads.gpt.hf import (
            from_hf,  # hf.py imports this module; the converter loads on first use
        )

        return from_hf(cls, hf_model)

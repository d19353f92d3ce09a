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

Deviations:
    - GELU instead of the paper's ReLU in Eq. 2 (GPT-2's choice); `gelu="tanh"` is GPT-2's "gelu_new" approximation.
    - Pre-LN instead of the paper's post-LN (GPT-2's choice).
    - Learned position embeddings instead of sinusoids (GPT-2's choice).
    - The output logits are not scaled; the embedding is not multiplied by sqrt(d_model) (GPT-2's choice).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from mlreads.core.hooks import HookedModule, HookPoint
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

    def __post_init__(self):
        if self.d_model % self.n_heads:
            raise ValueError(f"d_model={self.d_model} is not divisible by n_heads={self.n_heads}")

    @property
    def d_head(self) -> int:  # P = d_k = d_v
        return self.d_model // self.n_heads

    @property
    def d_mlp(self) -> int:  # d_ff in Eq. 2
        return 4 * self.d_model


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

    def __init__(self, cfg: GPTConfig):
        super().__init__()
        self.n_heads, self.d_head = cfg.n_heads, cfg.d_head
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

    def forward(self, x: Tensor, past: KV | None = None) -> tuple[Tensor, KV]:
        """x (B, Lq, D); past (k, v) of the earlier positions, or None. Returns (y (B, Lq, D), (k, v) so far)."""
        B, Lq, D = x.shape
        q, k, v = self.c_attn(x).split(D, dim=2)  # 3 x (B, Lq, D)
        q = self.hook_q(q.view(B, Lq, self.n_heads, self.d_head)).transpose(1, 2)  # (B, H, Lq, P)
        k = self.hook_k(k.view(B, Lq, self.n_heads, self.d_head)).transpose(1, 2)  # (B, H, Lq, P)
        v = self.hook_v(v.view(B, Lq, self.n_heads, self.d_head)).transpose(1, 2)  # (B, H, Lq, P)
        if past is not None:
            k = torch.cat([past[0], k], dim=2)  # (B, H, Lk, P)
            v = torch.cat([past[1], v], dim=2)  # (B, H, Lk, P)
        Lk = k.shape[2]
        if self._explicit_path():
            pattern = self.hook_pattern(attention_pattern(q, k, causal=True))  # (B, H, Lq, Lk)
            z = attend(self.attn_dropout(pattern), v)  # (B, H, Lq, P)
        else:
            p = self.dropout if self.training else 0.0
            if Lq == Lk:
                z = F.scaled_dot_product_attention(q, k, v, dropout_p=p, is_causal=True)  # (B, H, Lq, P)
            else:  # KV cache: SDPA's is_causal aligns the mask to the start, ours must align to the end
                mask = causal_mask(Lk, device=x.device)[Lk - Lq :]  # (Lq, Lk)
                z = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=p)  # (B, H, Lq, P)
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
        self.approximate = "tanh" if cfg.gelu == "tanh" else "none"
        self.hook_pre, self.hook_post = HookPoint(), HookPoint()  # (B, L, 4D)

    def forward(self, x: Tensor) -> Tensor:
        """x (B, L, D) -> (B, L, D)."""
        h = self.hook_pre(self.c_fc(x))  # (B, L, 4D)
        h = self.hook_post(F.gelu(h, approximate=self.approximate))  # (B, L, 4D)
        return self.dropout(self.c_proj(h))  # (B, L, D)


class Block(nn.Module):
    """One pre-LN decoder block: x + Attn(LN(x)), then x + MLP(LN(x)) (Radford 2019, Section 2.3)."""

    def __init__(self, cfg: GPTConfig):
        super().__init__()
        self.ln_1 = LayerNorm(cfg)
        self.attn = CausalSelfAttention(cfg)
        self.ln_2 = LayerNorm(cfg)
        self.mlp = MLP(cfg)
        self.hook_resid_pre, self.hook_resid_mid, self.hook_resid_post = HookPoint(), HookPoint(), HookPoint()
        self.hook_attn_out, self.hook_mlp_out = HookPoint(), HookPoint()

    def forward(self, x: Tensor, past: KV | None = None) -> tuple[Tensor, KV]:
        """x (B, L, D), past (k, v) or None -> (x (B, L, D), (k, v) so far, each (B, H, Lk, P))."""
        x = self.hook_resid_pre(x)  # (B, L, D)
        attn_out, kv = self.attn(self.ln_1(x), past)
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
        blocks.{l}.mlp.hook_pre / hook_post                           (B, L, 4D)
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
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.n_layers))
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

    def forward(self, idx: Tensor) -> Tensor:
        """idx (B, L) token ids, L <= n_ctx -> logits (B, L, V) for every position."""
        return self._forward(idx)[0]

    def _forward(self, idx: Tensor, past: list[KV] | None = None) -> tuple[Tensor, list[KV]]:
        B, L = idx.shape
        start = 0 if past is None else past[0][0].shape[2]
        if start + L > self.cfg.n_ctx:
            raise ValueError(f"sequence of {start + L} tokens is longer than n_ctx={self.cfg.n_ctx}")
        pos = torch.arange(start, start + L, device=idx.device)  # (L,)
        pos_embed = self.wpe(pos).expand(B, L, self.cfg.d_model)  # (B, L, D), a view, as TransformerLens shapes it
        x = self.drop(self.hook_embed(self.wte(idx)) + self.hook_pos_embed(pos_embed))  # (B, L, D)
        present = []
        for l, block in enumerate(self.blocks):
            x, kv = block(x, None if past is None else past[l])  # (B, L, D)
            present.append(kv)
        x = self.ln_final(x)  # (B, L, D)
        return F.linear(x, self.wte.weight), present  # (B, L, V), tied unembedding

    @torch.no_grad()
    def generate(
        self,
        idx: Tensor,
        n: int,
        temperature: float = 1.0,
        top_k: int | None = None,
        generator: torch.Generator | None = None,
        use_cache: bool = True,
    ) -> Tensor:
        """Append `n` sampled tokens to idx (B, L0); returns (B, L0 + n). `temperature=0` is greedy decoding.

        The context is cropped to the last n_ctx tokens. With `use_cache`, keys and values of earlier positions
        are kept (a KV cache) and each step runs only the new token; once the context would overflow n_ctx,
        the positions shift, so the cache is rebuilt from the cropped context, exactly as the no-cache path sees it.
        Call `model.eval()` first if the model has dropout. Sampling draws from `generator` (which must live on the
        model's device) when one is given, else from the global RNG.
        """
        past: list[KV] | None = None
        for _ in range(n):
            if use_cache and past is not None and past[0][0].shape[2] < self.cfg.n_ctx:
                logits, past = self._forward(idx[:, -1:], past)  # one new position
            else:
                logits, past = self._forward(idx[:, -self.cfg.n_ctx :])
                past = past if use_cache else None
            logits = logits[:, -1, :]  # (B, V)
            if temperature == 0:
                nxt = logits.argmax(dim=-1, keepdim=True)  # (B, 1)
            else:
                logits = logits / temperature
                if top_k is not None:
                    kth = torch.topk(logits, min(top_k, logits.shape[-1])).values[:, -1:]  # (B, 1)
                    logits = logits.masked_fill(logits < kth, float("-inf"))
                probs = logits.softmax(dim=-1)  # (B, V)
                nxt = torch.multinomial(probs, 1, generator=generator)  # (B, 1)
            idx = torch.cat([idx, nxt], dim=1)
        return idx

    @classmethod
    def from_hf(cls, hf_model) -> GPT:
        """A GPT with the weights of a transformers `GPT2LMHeadModel` (or `GPT2Model`).

        HF stores its projections as `Conv1D` with weight (in, out), so they are transposed into our `nn.Linear`
        (out, in). `activation_function` "gelu_new" maps to gelu="tanh", "gelu" to gelu="exact".
        """
        c = hf_model.config
        gelu = {"gelu_new": "tanh", "gelu_pytorch_tanh": "tanh", "gelu": "exact"}.get(c.activation_function)
        if gelu is None:
            raise ValueError(f"unsupported activation_function {c.activation_function!r}")
        if c.n_inner not in (None, 4 * c.n_embd):
            raise ValueError(f"n_inner={c.n_inner} is not 4 * n_embd; GPTConfig fixes d_mlp = 4 * d_model")
        if not c.scale_attn_weights or c.scale_attn_by_inverse_layer_idx:
            raise ValueError("only the standard 1/sqrt(d_head) attention scaling is supported")
        cfg = GPTConfig(
            d_vocab=c.vocab_size,
            n_ctx=c.n_positions,
            n_layers=c.n_layer,
            n_heads=c.n_head,
            d_model=c.n_embd,
            dropout=c.resid_pdrop,
            bias=True,
            gelu=gelu,
            layer_norm_eps=c.layer_norm_epsilon,
        )
        model = cls(cfg)
        sd = hf_model.state_dict()
        prefix = "transformer." if any(k.startswith("transformer.") for k in sd) else ""
        conv1d = ("attn.c_attn.weight", "attn.c_proj.weight", "mlp.c_fc.weight", "mlp.c_proj.weight")
        ours = {}
        for name in model.state_dict():
            hf_name = prefix + name.replace("blocks.", "h.").replace("ln_final.", "ln_f.")
            w = sd[hf_name]
            ours[name] = w.t() if name.endswith(conv1d) else w
        model.load_state_dict(ours, strict=True)
        return model

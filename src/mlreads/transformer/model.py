"""The encoder-decoder Transformer: Vaswani et al. 2017, "Attention Is All You Need", arXiv:1706.03762, Section 3.

    encoder layer (×N):  x = LayerNorm(x + Dropout(MultiHead(x, x, x)))
                         x = LayerNorm(x + Dropout(FFN(x)))                       (Section 3.1, post-LN)
    decoder layer (×N):  y = LayerNorm(y + Dropout(MultiHead_masked(y, y, y)))
                         y = LayerNorm(y + Dropout(MultiHead(y, m, m)))           (cross-attention on the memory m)
                         y = LayerNorm(y + Dropout(FFN(y)))
    FFN(x) = max(0, x W_1 + b_1) W_2 + b_2                                        (Eq. 2)
    PE(pos, 2i) = sin(pos / 10000^(2i/d)),  PE(pos, 2i+1) = cos(pos / 10000^(2i/d))   (Section 3.5)
    embeddings multiplied by √d_model, and the target embedding tied to the pre-softmax projection (Section 3.4)

Attention itself is `mlreads.gpt.attention` (Eq. 1, the same maths as the decoder-only GPT): scores, a padding or
causal mask, softmax, then A V.

Glossary (code name -> paper symbol): `d_model` d_model (512 base), `n_heads` h (8), `d_head` d_k = d_v (64),
`d_mlp` d_ff (2048), `n_layers` N (6), `dropout` P_drop (0.1), `w_q/w_k/w_v/w_o` W^Q, W^K, W^V, W^O.

Deviations:
- the source and target vocabularies are separate by default (the paper shares one BPE vocabulary and all three
  embedding matrices; `share_embeddings=True` does that when the vocabularies are the same, as in the MarianMT parity
  test); the target embedding is always tied to the output projection;
- `positional="learned"` replaces the sinusoids by learned embeddings (Table 3, row E).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from mlreads.core.data.translation import BOS, EOS, PAD
from mlreads.core.nn.decoding import beam_search
from mlreads.gpt import attend, attention_scores

KV = tuple[Tensor, Tensor]


@dataclass(frozen=True)
class TransformerConfig:
    src_vocab: int = 300
    tgt_vocab: int = 300
    d_model: int = 64
    n_heads: int = 4
    d_mlp: int = 256
    n_layers: int = 2
    n_ctx: int = 128  # the longest sequence the position table covers
    dropout: float = 0.1
    positional: Literal["sinusoidal", "learned"] = "sinusoidal"
    share_embeddings: bool = False  # one matrix for source, target and output (needs src_vocab == tgt_vocab)
    layer_norm_eps: float = 1e-5

    def __post_init__(self):
        if self.d_model % self.n_heads:
            raise ValueError(f"d_model={self.d_model} is not divisible by n_heads={self.n_heads}")
        if self.share_embeddings and self.src_vocab != self.tgt_vocab:
            raise ValueError("share_embeddings needs src_vocab == tgt_vocab")

    @property
    def d_head(self) -> int:
        return self.d_model // self.n_heads


def sinusoids(n_ctx: int, d_model: int) -> Tensor:
    """Section 3.5: PE (n_ctx, d_model), sin on even and cos on odd dimensions, wavelengths 2π .. 10000·2π."""
    pos = torch.arange(n_ctx, dtype=torch.float64)[:, None]  # (L, 1)
    inv_freq = 10000.0 ** (-torch.arange(0, d_model, 2, dtype=torch.float64) / d_model)  # (D/2,)
    pe = torch.zeros(n_ctx, d_model, dtype=torch.float64)
    pe[:, 0::2] = torch.sin(pos * inv_freq)
    pe[:, 1::2] = torch.cos(pos * inv_freq[: d_model // 2])
    return pe.float()


def noam_peak_lr(d_model: int, warmup: int) -> float:
    """Eq. 3 at its peak (step = warmup): d_model^-0.5 · warmup^-0.5. `fit` with schedule="rsqrt" and this lr
    follows Eq. 3 exactly."""
    return d_model**-0.5 * warmup**-0.5


def noam_lr(step: int, d_model: int, warmup: int) -> float:
    """Eq. 3: lrate = d_model^-0.5 · min(step^-0.5, step · warmup^-1.5), step counted from 1 (step 0 counts as 1).
    Training uses the same curve through `fit`'s schedule="rsqrt" at lr = `noam_peak_lr` (a test holds them equal)."""
    step = max(step, 1)
    return d_model**-0.5 * min(step**-0.5, step * warmup**-1.5)


class MultiHeadAttention(nn.Module):
    """Section 3.2.2: h heads of Eq. 1 on learned projections, concatenated, then W^O."""

    def __init__(self, cfg: TransformerConfig):
        super().__init__()
        self.n_heads, self.d_head = cfg.n_heads, cfg.d_head
        self.w_q = nn.Linear(cfg.d_model, cfg.d_model)
        self.w_k = nn.Linear(cfg.d_model, cfg.d_model)
        self.w_v = nn.Linear(cfg.d_model, cfg.d_model)
        self.w_o = nn.Linear(cfg.d_model, cfg.d_model)
        self.dropout = nn.Dropout(cfg.dropout)

    def heads(self, x: Tensor) -> Tensor:
        B, L, _ = x.shape
        return x.view(B, L, self.n_heads, self.d_head).transpose(1, 2)  # (B, H, L, P)

    def project_kv(self, memory: Tensor) -> KV:
        return self.heads(self.w_k(memory)), self.heads(self.w_v(memory))  # 2 x (B, H, Lk, P)

    def forward(self, x: Tensor, kv: KV, allowed: Tensor) -> tuple[Tensor, Tensor]:
        """x (B, Lq, D) queries; kv the projected keys and values (B, H, Lk, P); allowed a bool mask broadcastable
        to (B, H, Lq, Lk). Returns (output (B, Lq, D), pattern (B, H, Lq, Lk))."""
        B, Lq, D = x.shape
        q = self.heads(self.w_q(x))  # (B, H, Lq, P)
        scores = attention_scores(q, kv[0]).masked_fill(~allowed, float("-inf"))  # (B, H, Lq, Lk)
        pattern = scores.softmax(dim=-1)
        z = attend(self.dropout(pattern), kv[1])  # (B, H, Lq, P)
        return self.w_o(z.transpose(1, 2).reshape(B, Lq, D)), pattern


class FeedForward(nn.Module):
    """Eq. 2: max(0, x W_1 + b_1) W_2 + b_2."""

    def __init__(self, cfg: TransformerConfig):
        super().__init__()
        self.w_1 = nn.Linear(cfg.d_model, cfg.d_mlp)
        self.w_2 = nn.Linear(cfg.d_mlp, cfg.d_model)
        self.dropout = nn.Dropout(cfg.dropout)

    def forward(self, x: Tensor) -> Tensor:
        return self.w_2(self.dropout(F.relu(self.w_1(x))))


class EncoderLayer(nn.Module):
    def __init__(self, cfg: TransformerConfig):
        super().__init__()
        self.self_attn, self.ffn = MultiHeadAttention(cfg), FeedForward(cfg)
        self.ln_1 = nn.LayerNorm(cfg.d_model, eps=cfg.layer_norm_eps)
        self.ln_2 = nn.LayerNorm(cfg.d_model, eps=cfg.layer_norm_eps)
        self.dropout = nn.Dropout(cfg.dropout)

    def forward(self, x: Tensor, allowed: Tensor) -> Tensor:
        x = self.ln_1(x + self.dropout(self.self_attn(x, self.self_attn.project_kv(x), allowed)[0]))
        return self.ln_2(x + self.dropout(self.ffn(x)))


class DecoderLayer(nn.Module):
    def __init__(self, cfg: TransformerConfig):
        super().__init__()
        self.self_attn, self.cross_attn, self.ffn = MultiHeadAttention(cfg), MultiHeadAttention(cfg), FeedForward(cfg)
        self.ln_1 = nn.LayerNorm(cfg.d_model, eps=cfg.layer_norm_eps)
        self.ln_2 = nn.LayerNorm(cfg.d_model, eps=cfg.layer_norm_eps)
        self.ln_3 = nn.LayerNorm(cfg.d_model, eps=cfg.layer_norm_eps)
        self.dropout = nn.Dropout(cfg.dropout)

    def forward(self, y: Tensor, cross_kv: KV, src_allowed: Tensor, past: KV | None = None):
        """y (B, Lq, D) the new target positions; past: this layer's self-attention keys/values of earlier positions.
        Returns (y, the self-attention (k, v) so far, the cross-attention pattern (B, H, Lq, S))."""
        k, v = self.self_attn.project_kv(y)
        if past is not None:
            k, v = torch.cat([past[0], k], dim=2), torch.cat([past[1], v], dim=2)  # (B, H, Lk, P)
        Lq, Lk = y.shape[1], k.shape[2]
        causal = torch.ones(Lk, Lk, dtype=torch.bool, device=y.device).tril()[Lk - Lq :]  # (Lq, Lk), end-aligned
        y = self.ln_1(y + self.dropout(self.self_attn(y, (k, v), causal)[0]))
        a, pattern = self.cross_attn(y, cross_kv, src_allowed)
        y = self.ln_2(y + self.dropout(a))
        return self.ln_3(y + self.dropout(self.ffn(y))), (k, v), pattern


class EncoderDecoder(nn.Module):
    """`forward(src (B, S), tgt_in (B, T))` -> logits (B, T, V). `encode`, `decode_step` for incremental decoding."""

    def __init__(self, cfg: TransformerConfig):
        super().__init__()
        self.cfg = cfg
        self.tgt_embed = nn.Embedding(cfg.tgt_vocab, cfg.d_model, padding_idx=PAD)
        self.src_embed = self.tgt_embed if cfg.share_embeddings else nn.Embedding(cfg.src_vocab, cfg.d_model,
                                                                                  padding_idx=PAD)  # fmt: skip
        if cfg.positional == "sinusoidal":
            self.register_buffer("pos", sinusoids(cfg.n_ctx, cfg.d_model), persistent=False)
        else:
            self.pos = nn.Parameter(torch.randn(cfg.n_ctx, cfg.d_model) * 0.02)  # (L, D), Table 3 row E
        self.encoder = nn.ModuleList(EncoderLayer(cfg) for _ in range(cfg.n_layers))
        self.decoder = nn.ModuleList(DecoderLayer(cfg) for _ in range(cfg.n_layers))
        self.dropout = nn.Dropout(cfg.dropout)
        self._init_weights()

    def _init_weights(self) -> None:
        """Xavier-uniform matrices (as the reference implementations do), N(0, d^-0.5) embeddings (tied to the
        output, so logits start near unit scale), zero biases."""
        for name, p in self.named_parameters():
            if name.endswith("embed.weight"):
                nn.init.normal_(p, std=self.cfg.d_model**-0.5)
            elif p.ndim == 2 and name != "pos":
                nn.init.xavier_uniform_(p)
            elif name.endswith("bias") and "ln_" not in name:
                nn.init.zeros_(p)
        with torch.no_grad():
            self.tgt_embed.weight[PAD].zero_()
            self.src_embed.weight[PAD].zero_()

    def embed(self, ids: Tensor, table: nn.Embedding, start: int = 0) -> Tensor:
        """Section 3.4-3.5: E x · √d_model + PE, then dropout. (B, L) -> (B, L, D)."""
        L = ids.shape[1]
        if start + L > self.cfg.n_ctx:
            raise ValueError(f"sequence of {start + L} tokens is longer than n_ctx={self.cfg.n_ctx}")
        return self.dropout(table(ids) * math.sqrt(self.cfg.d_model) + self.pos[start : start + L])

    def encode(self, src: Tensor) -> tuple[Tensor, Tensor]:
        """src (B, S) -> (memory (B, S, D), src_allowed (B, 1, 1, S))."""
        allowed = (src != PAD)[:, None, None, :]  # (B, 1, 1, S)
        x = self.embed(src, self.src_embed)
        for layer in self.encoder:
            x = layer(x, allowed)
        return x, allowed

    def logits(self, y: Tensor) -> Tensor:
        return y @ self.tgt_embed.weight.T  # (B, L, V), tied pre-softmax projection

    def decode(self, tgt_in: Tensor, memory: Tensor, src_allowed: Tensor, cache: list | None = None,
               start: int = 0) -> tuple[Tensor, list, list[Tensor]]:
        """Decoder over the new target positions tgt_in (B, Lq) starting at `start`. `cache`: per layer
        (self k/v so far, cross k/v). Returns (logits (B, Lq, V), the new cache, cross patterns per layer)."""
        y = self.embed(tgt_in, self.tgt_embed, start)
        new_cache, patterns = [], []
        for i, layer in enumerate(self.decoder):
            past, cross = (cache[i] if cache is not None else (None, layer.cross_attn.project_kv(memory)))
            y, kv, pattern = layer(y, cross, src_allowed, past)
            new_cache.append((kv, cross))
            patterns.append(pattern)
        return self.logits(y), new_cache, patterns

    def forward(self, src: Tensor, tgt_in: Tensor) -> Tensor:
        memory, allowed = self.encode(src)
        return self.decode(tgt_in, memory, allowed)[0]

    @torch.no_grad()
    def greedy(self, src: Tensor, max_len: int, use_cache: bool = True) -> Tensor:
        """Greedy decoding, (B, <= max_len) ids (PAD after EOS). With `use_cache`, each step runs one position."""
        memory, allowed = self.encode(src)
        ys = torch.full((len(src), 1), BOS, dtype=torch.long)
        done = torch.zeros(len(src), dtype=torch.bool)
        cache = None
        for t in range(max_len):
            if use_cache:
                logits, cache, _ = self.decode(ys[:, -1:], memory, allowed, cache, start=t)
            else:
                logits = self.decode(ys, memory, allowed)[0]
            nxt = logits[:, -1].argmax(-1).masked_fill(done, PAD)  # (B,)
            ys = torch.cat([ys, nxt[:, None]], dim=1)
            done |= nxt == EOS
            if done.all():
                break
        return ys[:, 1:]

    @torch.no_grad()
    def beam(self, src: Tensor, beam: int, max_len: int, alpha: float = 0.6) -> list[int]:
        """Beam search for one source sentence src (1, S) (Section 6.1: beam 4, length penalty alpha 0.6)."""
        memory, allowed = self.encode(src)

        def step(tokens: Tensor, state):
            cache, t = state
            K = len(tokens)
            logits, cache, _ = self.decode(tokens[:, None], memory.expand(K, -1, -1), allowed.expand(K, -1, -1, -1),
                                           cache, start=t)  # fmt: skip
            return logits[:, -1].log_softmax(-1), (cache, t + 1)

        return beam_search(step, (None, 0), beam, max_len, BOS, EOS, alpha)[0]

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
- `positional="learned"` replaces the sinusoids by learned embeddings (Table 3, row E), parametrised as the
  paper's code (tensor2tensor, `add_positional_embedding_nd`) does: a table initialised N(0, d^-0.5) and multiplied
  by √d_model, so that positions start at the token embeddings' unit scale and learn at their rate.

Switches for converted models (`EncoderDecoder.from_hf` reads a transformers MarianMTModel: mlreads/transformer/hf.py),
each at the paper's value by default: `act_fn` (Eq. 2's ReLU), `scale_embedding` (the √d_model of Section 3.4),
`sinusoid_layout` ("halves": sin in the first d/2 dimensions and cos in the rest, Marian's table, the same frequencies
as the interleaved one), `attn_dropout` / `ffn_dropout` (the rates on the attention pattern and after the FFN
activation; None: `dropout`), `logits_bias` (a fixed bias on the logits, Marian's final_logits_bias), and the special
ids `pad_id`, `bos_id` (the first decoder input), `eos_id`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor, nn

from mlreads.core.data.translation import BOS, EOS, PAD
from mlreads.core.nn.activations import activation
from mlreads.core.nn.decoding import beam_search
from mlreads.core.nn.hooks import HookedModule, HookPoint
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
    act_fn: str = "relu"  # Eq. 2's max(0, .); a name in core.nn.activations.ACTIVATIONS (Marian: activation_function)
    scale_embedding: bool = True  # multiply embeddings by √d_model, Section 3.4 (Marian: scale_embedding)
    sinusoid_layout: Literal["interleaved", "halves"] = "interleaved"  # Section 3.5's; "halves": sin | cos (Marian)
    attn_dropout: float | None = None  # on the attention pattern; None: `dropout` (Marian: attention_dropout)
    ffn_dropout: float | None = None  # after the FFN activation; None: `dropout` (Marian: activation_dropout)
    logits_bias: bool = False  # a fixed bias buffer on the logits (Marian: final_logits_bias)
    pad_id: int = PAD  # masked source keys; the embedding row kept at zero (Marian: pad_token_id)
    bos_id: int = BOS  # the first decoder input (Marian: decoder_start_token_id)
    eos_id: int = EOS  # ends greedy and beam decoding (Marian: eos_token_id)

    def __post_init__(self):
        if self.d_model % self.n_heads:
            raise ValueError(f"d_model={self.d_model} is not divisible by n_heads={self.n_heads}")
        if self.share_embeddings and self.src_vocab != self.tgt_vocab:
            raise ValueError("share_embeddings needs src_vocab == tgt_vocab")

    @property
    def d_head(self) -> int:
        return self.d_model // self.n_heads


def sinusoids(n_ctx: int, d_model: int, layout: str = "interleaved") -> Tensor:
    """Section 3.5: PE (n_ctx, d_model), sin on even and cos on odd dimensions, wavelengths 2π .. 10000·2π.

    layout "halves": the same columns reordered, sin | cos (the first ceil(d/2) dimensions are the sines), as
    transformers' Marian builds its table."""
    if layout not in ("interleaved", "halves"):
        raise ValueError(f"sinusoid_layout={layout!r} is not one of ('interleaved', 'halves')")
    pos = torch.arange(n_ctx, dtype=torch.float64)[:, None]  # (L, 1)
    inv_freq = 10000.0 ** (-torch.arange(0, d_model, 2, dtype=torch.float64) / d_model)  # (D/2,)
    sin, cos = torch.sin(pos * inv_freq), torch.cos(pos * inv_freq[: d_model // 2])
    if layout == "halves":
        return torch.cat([sin, cos], dim=1).float()
    pe = torch.zeros(n_ctx, d_model, dtype=torch.float64)
    pe[:, 0::2] = sin
    pe[:, 1::2] = cos
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
        self.dropout = nn.Dropout(cfg.dropout if cfg.attn_dropout is None else cfg.attn_dropout)
        self.hook_q, self.hook_k, self.hook_v = HookPoint(), HookPoint(), HookPoint()  # (B, L, H, P)
        self.hook_pattern = HookPoint()  # (B, H, Lq, Lk)
        self.hook_z = HookPoint()  # (B, Lq, H, P)

    def heads(self, x: Tensor, hook: HookPoint) -> Tensor:
        """(B, L, D) -> (B, H, L, P); the hook sees TransformerLens's (B, L, H, P) layout."""
        B, L, _ = x.shape
        return hook(x.view(B, L, self.n_heads, self.d_head)).transpose(1, 2)  # (B, H, L, P)

    def project_kv(self, memory: Tensor) -> KV:
        return self.heads(self.w_k(memory), self.hook_k), self.heads(self.w_v(memory), self.hook_v)  # 2 x (B, H, Lk, P)

    def forward(self, x: Tensor, kv: KV, allowed: Tensor) -> tuple[Tensor, Tensor]:
        """x (B, Lq, D) queries; kv the projected keys and values (B, H, Lk, P); allowed a bool mask broadcastable
        to (B, H, Lq, Lk). Returns (output (B, Lq, D), pattern (B, H, Lq, Lk))."""
        B, Lq, D = x.shape
        q = self.heads(self.w_q(x), self.hook_q)  # (B, H, Lq, P)
        scores = attention_scores(q, kv[0]).masked_fill(~allowed, float("-inf"))  # (B, H, Lq, Lk)
        pattern = self.hook_pattern(scores.softmax(dim=-1))
        z = self.hook_z(attend(self.dropout(pattern), kv[1]).transpose(1, 2))  # (B, Lq, H, P)
        return self.w_o(z.reshape(B, Lq, D)), pattern


class FeedForward(nn.Module):
    """Eq. 2: max(0, x W_1 + b_1) W_2 + b_2 (`act_fn` replaces max(0, .) for converted models)."""

    def __init__(self, cfg: TransformerConfig):
        super().__init__()
        self.w_1 = nn.Linear(cfg.d_model, cfg.d_mlp)
        self.w_2 = nn.Linear(cfg.d_mlp, cfg.d_model)
        self.act = activation(cfg.act_fn)
        self.dropout = nn.Dropout(cfg.dropout if cfg.ffn_dropout is None else cfg.ffn_dropout)
        self.hook_pre, self.hook_post = HookPoint(), HookPoint()  # (B, L, d_mlp)

    def forward(self, x: Tensor) -> Tensor:
        return self.w_2(self.dropout(self.hook_post(self.act(self.hook_pre(self.w_1(x))))))


class EncoderLayer(nn.Module):
    def __init__(self, cfg: TransformerConfig):
        super().__init__()
        self.self_attn, self.ffn = MultiHeadAttention(cfg), FeedForward(cfg)
        self.ln_1 = nn.LayerNorm(cfg.d_model, eps=cfg.layer_norm_eps)
        self.ln_2 = nn.LayerNorm(cfg.d_model, eps=cfg.layer_norm_eps)
        self.dropout = nn.Dropout(cfg.dropout)
        self.hook_resid_pre, self.hook_resid_mid, self.hook_resid_post = HookPoint(), HookPoint(), HookPoint()
        self.hook_attn_out, self.hook_mlp_out = HookPoint(), HookPoint()  # (B, L, D)

    def forward(self, x: Tensor, allowed: Tensor) -> Tensor:
        x = self.hook_resid_pre(x)  # (B, S, D)
        a = self.hook_attn_out(self.self_attn(x, self.self_attn.project_kv(x), allowed)[0])
        x = self.hook_resid_mid(self.ln_1(x + self.dropout(a)))
        return self.hook_resid_post(self.ln_2(x + self.dropout(self.hook_mlp_out(self.ffn(x)))))


class DecoderLayer(nn.Module):
    def __init__(self, cfg: TransformerConfig):
        super().__init__()
        self.self_attn, self.cross_attn, self.ffn = MultiHeadAttention(cfg), MultiHeadAttention(cfg), FeedForward(cfg)
        self.ln_1 = nn.LayerNorm(cfg.d_model, eps=cfg.layer_norm_eps)
        self.ln_2 = nn.LayerNorm(cfg.d_model, eps=cfg.layer_norm_eps)
        self.ln_3 = nn.LayerNorm(cfg.d_model, eps=cfg.layer_norm_eps)
        self.dropout = nn.Dropout(cfg.dropout)
        self.hook_resid_pre, self.hook_resid_mid, self.hook_resid_post = HookPoint(), HookPoint(), HookPoint()
        self.hook_resid_mid_cross = HookPoint()  # after the cross-attention sublayer
        self.hook_attn_out, self.hook_cross_attn_out, self.hook_mlp_out = HookPoint(), HookPoint(), HookPoint()

    def forward(self, y: Tensor, cross_kv: KV, src_allowed: Tensor, past: KV | None = None):
        """y (B, Lq, D) the new target positions; past: this layer's self-attention keys/values of earlier positions.
        Returns (y, the self-attention (k, v) so far, the cross-attention pattern (B, H, Lq, S))."""
        y = self.hook_resid_pre(y)  # (B, Lq, D)
        k, v = self.self_attn.project_kv(y)
        if past is not None:
            k, v = torch.cat([past[0], k], dim=2), torch.cat([past[1], v], dim=2)  # (B, H, Lk, P)
        Lq, Lk = y.shape[1], k.shape[2]
        causal = torch.ones(Lk, Lk, dtype=torch.bool, device=y.device).tril()[Lk - Lq :]  # (Lq, Lk), end-aligned
        a = self.hook_attn_out(self.self_attn(y, (k, v), causal)[0])
        y = self.hook_resid_mid(self.ln_1(y + self.dropout(a)))
        a, pattern = self.cross_attn(y, cross_kv, src_allowed)
        y = self.hook_resid_mid_cross(self.ln_2(y + self.dropout(self.hook_cross_attn_out(a))))
        return self.hook_resid_post(self.ln_3(y + self.dropout(self.hook_mlp_out(self.ffn(y))))), (k, v), pattern


class EncoderDecoder(HookedModule):
    """`forward(src (B, S), tgt_in (B, T))` -> logits (B, T, V). `encode`, `decode` (with a cache) for incremental
    decoding.

    Hook points (`run_with_cache`, `run_with_hooks`), TransformerLens names with an encoder. / decoder. prefix
    (the module paths, and so the state_dict keys, stay `encoder.{l}.self_attn...`; `hook_aliases` renames them):
        encoder.hook_embed, encoder.hook_pos_embed                  (B, S, D)  E x · √d_model, PE
        encoder.blocks.{l}.hook_resid_pre / hook_resid_mid / hook_resid_post / hook_attn_out / hook_mlp_out
                                                                    (B, S, D)
        encoder.blocks.{l}.attn.hook_q / hook_k / hook_v / hook_z   (B, S, H, P)
        encoder.blocks.{l}.attn.hook_pattern                        (B, H, S, S)
        encoder.blocks.{l}.mlp.hook_pre / hook_post                 (B, S, d_mlp)
        decoder.hook_embed, decoder.hook_pos_embed                  (B, T, D)
        decoder.blocks.{l}.hook_resid_pre / hook_resid_mid / hook_resid_mid_cross / hook_resid_post,
        decoder.blocks.{l}.hook_attn_out / hook_cross_attn_out / hook_mlp_out   (B, T, D)
        decoder.blocks.{l}.attn.hook_q / hook_k / hook_v / hook_z   (B, T, H, P)
        decoder.blocks.{l}.attn.hook_pattern                        (B, H, T, T), causal
        decoder.blocks.{l}.cross_attn.hook_q / hook_z               (B, T, H, P)
        decoder.blocks.{l}.cross_attn.hook_k / hook_v               (B, S, H, P)
        decoder.blocks.{l}.cross_attn.hook_pattern                  (B, H, T, S), over the source
        decoder.blocks.{l}.mlp.hook_pre / hook_post                 (B, T, d_mlp)
    hook_resid_mid follows the (post-LN) self-attention sublayer, hook_resid_mid_cross the cross-attention one.
    Incremental decoding (`greedy`, `beam`) fires the decoder hooks once per step, on that step's positions.
    """

    hook_aliases = ((r"^(encoder|decoder)\.(\d+)\.", r"\1.blocks.\2."), (r"\.self_attn\.", ".attn."),
                    (r"\.ffn\.", ".mlp."), (r"^hook_src_", "encoder.hook_"), (r"^hook_tgt_", "decoder.hook_"))

    def __init__(self, cfg: TransformerConfig):
        super().__init__()
        self.cfg = cfg
        self.tgt_embed = nn.Embedding(cfg.tgt_vocab, cfg.d_model, padding_idx=cfg.pad_id)
        self.src_embed = self.tgt_embed if cfg.share_embeddings else nn.Embedding(cfg.src_vocab, cfg.d_model,
                                                                                  padding_idx=cfg.pad_id)  # fmt: skip
        if cfg.positional == "sinusoidal":
            self.register_buffer("pos", sinusoids(cfg.n_ctx, cfg.d_model, cfg.sinusoid_layout), persistent=False)
        else:
            # (L, D), Table 3 row E; used times √d_model (embed), as tensor2tensor's learned positions are
            self.pos = nn.Parameter(torch.randn(cfg.n_ctx, cfg.d_model) * cfg.d_model**-0.5)
        self.encoder = nn.ModuleList(EncoderLayer(cfg) for _ in range(cfg.n_layers))
        self.decoder = nn.ModuleList(DecoderLayer(cfg) for _ in range(cfg.n_layers))
        self.dropout = nn.Dropout(cfg.dropout)
        self.hook_src_embed, self.hook_src_pos_embed = HookPoint(), HookPoint()  # (B, S, D)
        self.hook_tgt_embed, self.hook_tgt_pos_embed = HookPoint(), HookPoint()  # (B, T, D)
        if cfg.logits_bias:  # fixed, as Marian's final_logits_bias (a buffer there too)
            self.register_buffer("final_logits_bias", torch.zeros(1, cfg.tgt_vocab))
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
            self.tgt_embed.weight[self.cfg.pad_id].zero_()
            self.src_embed.weight[self.cfg.pad_id].zero_()

    def embed(self, ids: Tensor, table: nn.Embedding, start: int = 0,
              hooks: tuple[HookPoint, HookPoint] | None = None) -> Tensor:  # fmt: skip
        """Section 3.4-3.5: E x · √d_model + PE, then dropout. (B, L) -> (B, L, D). `hooks`: the (token, position)
        hook points that see the two terms."""
        B, L = ids.shape
        if start + L > self.cfg.n_ctx:
            raise ValueError(f"sequence of {start + L} tokens is longer than n_ctx={self.cfg.n_ctx}")
        scale = math.sqrt(self.cfg.d_model) if self.cfg.scale_embedding else 1.0
        tok = table(ids) * scale  # (B, L, D)
        pos = self.pos[start : start + L].expand(B, L, -1)  # (B, L, D), a broadcast view
        if self.cfg.positional == "learned":
            pos = pos * math.sqrt(self.cfg.d_model)  # unit scale, as the sinusoids and the scaled tokens
        if hooks is not None:
            tok, pos = hooks[0](tok), hooks[1](pos)
        return self.dropout(tok + pos)

    def encode(self, src: Tensor) -> tuple[Tensor, Tensor]:
        """src (B, S) -> (memory (B, S, D), src_allowed (B, 1, 1, S))."""
        allowed = (src != self.cfg.pad_id)[:, None, None, :]  # (B, 1, 1, S)
        x = self.embed(src, self.src_embed, hooks=(self.hook_src_embed, self.hook_src_pos_embed))
        for layer in self.encoder:
            x = layer(x, allowed)
        return x, allowed

    def logits(self, y: Tensor) -> Tensor:
        logits = y @ self.tgt_embed.weight.T  # (B, L, V), tied pre-softmax projection
        return logits + self.final_logits_bias if self.cfg.logits_bias else logits

    def decode(self, tgt_in: Tensor, memory: Tensor, src_allowed: Tensor, cache: list | None = None,
               start: int = 0) -> tuple[Tensor, list, list[Tensor]]:
        """Decoder over the new target positions tgt_in (B, Lq) starting at `start`. `cache`: per layer
        (self k/v so far, cross k/v). Returns (logits (B, Lq, V), the new cache, cross patterns per layer)."""
        y = self.embed(tgt_in, self.tgt_embed, start, hooks=(self.hook_tgt_embed, self.hook_tgt_pos_embed))
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
        ys = torch.full((len(src), 1), self.cfg.bos_id, dtype=torch.long)
        done = torch.zeros(len(src), dtype=torch.bool)
        cache = None
        for t in range(max_len):
            if use_cache:
                logits, cache, _ = self.decode(ys[:, -1:], memory, allowed, cache, start=t)
            else:
                logits = self.decode(ys, memory, allowed)[0]
            nxt = logits[:, -1].argmax(-1).masked_fill(done, self.cfg.pad_id)  # (B,)
            ys = torch.cat([ys, nxt[:, None]], dim=1)
            done |= nxt == self.cfg.eos_id
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

        return beam_search(step, (None, 0), beam, max_len, self.cfg.bos_id, self.cfg.eos_id, alpha)[0]

    @classmethod
    def from_hf(cls, source) -> EncoderDecoder:
        """An EncoderDecoder with the config and weights of a transformers `MarianMTModel` (or the headless
        `MarianModel`, whose logits are then the tied projection without a bias), or of the folder one was saved to
        with `save_pretrained` (read offline). Which MarianConfig field maps where, and which are refused: see
        mlreads/transformer/hf.py."""
        from mlreads.transformer.hf import encoder_decoder_from_hf

        return encoder_decoder_from_hf(source)

"""The Mamba block and language model (Gu & Dao 2023, arXiv 2312.00752), Section 3.4, Figure 3 and Appendix E.

Glossary (code name -> paper symbol):
    d_model -> D          d_inner -> E·D (expand E = 2)     d_state -> N        d_conv -> conv width (4)
    dt_rank -> R (rank of the Δ projection, ceil(D/16))
    in_proj -> the two input branches (x and the gate z)     conv1d -> the causal depthwise convolution
    x_proj -> s_B, s_C and the rank-R part of s_Δ (Algorithm 2)   dt_proj -> Linear_D(.) of s_Δ, with Parameter Δ as bias
    A_log -> log(−A), A = −exp(A_log) (S4D-real init A_n = −(n+1))   D -> D (skip)     delta -> Δ = τ_Δ(Parameter + s_Δ(x))
    out_proj -> the output projection;  selective=False -> the LTI (S4-like) ablation of Table 1

State for recurrent inference, per layer: conv state (B, E, K), the last K inputs of the convolution (newest last),
and SSM state (B, E, N), as in mamba-ssm / transformers. Dtypes: the conv state is cast to the model's dtype (as
transformers casts its cache) and the SSM state is kept in float32 (float64 for a float64 model), the precision the
scan computes it in; a state of any float dtype is accepted.

Half precision (float16 / bfloat16) follows transformers' MambaForCausalLM: RMSNorm normalises in float32, the
residual stream stays in float32 when `residual_in_fp32` (the official default), Δ, A and the scan run in float32.

Deviations:
- The LTI variant (`selective=False`) keeps Mamba's sharing of B and C across channels and makes Δ (per channel),
  B and C (N,) plain parameters, so that the only change is the selection mechanism; S4 proper has per-channel
  complex B and C.
- Parameter init uses the global RNG through torch's standard `nn.Module` initialisers (the runner seeds it).
- `MambaLM.from_hf` refuses what this model cannot represent, one line each: a conv activation other than SiLU
  (`hidden_act`), other model types (Mamba-2), untied lm_heads of a config that says tied.
- `hook_ssm_state` holds the last state (B, E, N), not the states of every step (that is the (B, L, E, N) tensor the
  scan is built never to store).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from mlreads.core.nn.hf import hf_model as load_hf
from mlreads.core.nn.hooks import HookedModule, HookPoint
from mlreads.mamba.conv import causal_conv1d_silu
from mlreads.mamba.scan import selective_scan
from mlreads.mamba.step import scan_step

State = list[tuple[Tensor, Tensor]]  # per layer: (conv state (B, E, K), ssm state (B, E, N))


@dataclass(frozen=True)
class MambaConfig:
    d_vocab: int = 16  # V (transformers: vocab_size)
    d_model: int = 64
    n_layers: int = 2
    d_state: int = 16  # N
    expand: int = 2  # E = expand * d_model
    d_inner_size: int = 0  # E when set (transformers: intermediate_size); 0 means expand * d_model
    d_conv: int = 4  # K
    dt_rank: int = 0  # R; 0 means ceil(d_model / 16), the official "auto"
    dt_min: float = 1e-3  # Δ init range, log-uniform
    dt_max: float = 1e-1
    dt_init_floor: float = 1e-4
    dt_scale: float = 1.0
    conv_bias: bool = True
    bias: bool = False  # in_proj / out_proj biases
    norm_eps: float = 1e-5
    residual_in_fp32: bool = True  # keep the residual stream in float32 for half-precision models (official default)
    tie_embeddings: bool = True  # unembed with embedding^T; False adds an `lm_head` (HF: tie_word_embeddings)
    selective: bool = True  # False: the LTI ablation (Δ, B, C independent of the input)
    scan_impl: Literal["fused", "chunked", "loop", "ref"] = "fused"  # fused falls back to chunked without a compiler
    chunk_size: int = 64

    @property
    def d_inner(self) -> int:
        return self.d_inner_size or self.expand * self.d_model

    @property
    def rank(self) -> int:
        return self.dt_rank or math.ceil(self.d_model / 16)


def _work(t: Tensor) -> Tensor:
    """t in the precision the SSM computes in: float32, or float64 for a float64 model."""
    return t.to(torch.promote_types(t.dtype, torch.float32))


def _lf(t: Tensor) -> Tensor:
    """(B, C, L) -> (B, L, C), a view (length-last to features-last)."""
    return t.transpose(-1, -2)


_cf = _lf  # (B, L, C) -> (B, C, L), the same view


def _matmul_cf(weight: Tensor, x: Tensor) -> Tensor:
    """weight (O, I) applied to x (B, I, L) channel-first: (B, O, L) contiguous. A batched product with the weight
    broadcast, because torch.matmul folds a (2-D @ 3-D) product into one 2-D product through transposing copies of
    x and of the result (and of both gradients in backward); x may be a strided view with unit stride along I or L."""
    return torch.bmm(weight.expand(x.shape[0], *weight.shape), x)


def inverse_softplus(x: Tensor) -> Tensor:
    """softplus^{-1}(x) = x + log(1 − exp(−x)), for the Δ bias init (Appendix E / official code)."""
    return x + torch.log(-torch.expm1(-x))


def init_dt_bias(d_inner: int, cfg: MambaConfig) -> Tensor:
    """Δ bias with softplus(bias) ~ log-uniform over [dt_min, dt_max] (Section 3.6, Appendix E)."""
    dt = torch.exp(torch.rand(d_inner) * (math.log(cfg.dt_max) - math.log(cfg.dt_min)) + math.log(cfg.dt_min))
    return inverse_softplus(dt.clamp(min=cfg.dt_init_floor))


def s4d_real_A_log(d_inner: int, d_state: int) -> Tensor:
    """S4D-real init A_n = −(n + 1), stored as log(−A) per channel: (E, N)."""
    return torch.log(torch.arange(1, d_state + 1, dtype=torch.float32)).repeat(d_inner, 1)


class RMSNorm(nn.Module):
    def __init__(self, d: int, eps: float = 1e-5):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(d))

    def forward(self, x: Tensor) -> Tensor:
        """x / rms(x) * weight; the statistic in float32 at least, the result in x's dtype (as transformers)."""
        h = _work(x)
        return self.weight * (h * torch.rsqrt(h.pow(2).mean(-1, keepdim=True) + self.eps)).to(x.dtype)


class MambaMixer(nn.Module):
    """The Mamba block of Figure 3: in_proj, causal conv, SiLU, selective SSM (Algorithm 2), SiLU(z) gate, out_proj."""

    def __init__(self, cfg: MambaConfig):
        super().__init__()
        self.cfg = cfg
        E, N, R = cfg.d_inner, cfg.d_state, cfg.rank
        self.in_proj = nn.Linear(cfg.d_model, 2 * E, bias=cfg.bias)
        # weights only (applied with F.conv1d and an explicit left context); the padding matches the official layer
        self.conv1d = nn.Conv1d(E, E, cfg.d_conv, groups=E, padding=cfg.d_conv - 1, bias=cfg.conv_bias)
        if cfg.selective:
            self.x_proj = nn.Linear(E, R + 2 * N, bias=False)  # s_Δ (rank R), s_B, s_C
            self.dt_proj = nn.Linear(R, E, bias=True)  # bias = Parameter of τ_Δ(Parameter + s_Δ(x))
            dt_std = R**-0.5 * cfg.dt_scale
            with torch.no_grad():
                nn.init.uniform_(self.dt_proj.weight, -dt_std, dt_std)
                self.dt_proj.bias.copy_(init_dt_bias(E, cfg))
        else:
            self.dt_bias = nn.Parameter(init_dt_bias(E, cfg))  # (E,) Δ = softplus(dt_bias), input-independent
            self.B_param = nn.Parameter(torch.ones(N))  # (N,) S4D's B = 1
            self.C_param = nn.Parameter(torch.randn(N) * N**-0.5)  # (N,)
        self.A_log = nn.Parameter(s4d_real_A_log(E, N))  # (E, N)
        self.D = nn.Parameter(torch.ones(E))  # (E,)
        self.out_proj = nn.Linear(E, cfg.d_model, bias=cfg.bias)
        self.hook_x = HookPoint()  # (B, L, E) after conv and SiLU, the SSM input
        self.hook_gate = HookPoint()  # (B, L, E) z, before SiLU
        self.hook_delta = HookPoint()  # (B, L, E) Δ after softplus
        self.hook_B = HookPoint()  # (B, L, N)
        self.hook_C = HookPoint()  # (B, L, N)
        self.hook_ssm_state = HookPoint()  # (B, E, N) the last state
        self.hook_y = HookPoint()  # (B, L, E) gated SSM output, before out_proj

    def ssm_params(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Δ, B, C (Algorithm 2, lines 3-5): functions of x when selective, constants otherwise. Each (B, L, .)."""
        if self.cfg.selective:
            dt, B, C = self.x_proj(x).split([self.cfg.rank, self.cfg.d_state, self.cfg.d_state], dim=-1)
            # the bias is added and softplus taken in float32 at least, as the official kernel does
            delta = F.softplus(_work(F.linear(dt, self.dt_proj.weight)) + _work(self.dt_proj.bias))  # (B, L, E)
        else:
            shape = (*x.shape[:-1], self.cfg.d_state)
            delta = F.softplus(_work(self.dt_bias)).expand(x.shape)  # (B, L, E)
            B, C = self.B_param.expand(shape), self.C_param.expand(shape)  # (B, L, N)
        return self.hook_delta(delta), self.hook_B(B), self.hook_C(C)

    def forward(self, x: Tensor, state: tuple[Tensor, Tensor] | None = None):
        """x (B, L, D) -> (out (B, L, D), new state). `state` continues a sequence (segmented long evaluation).

        Inside, the block runs channel-first, (B, E, L), the scan's layout, with no transposing copies: in_proj
        writes x and z each in (B, E, L) (two batched products reading the (B, L, D) input transposed in place), the
        conv and the scan read them as they are, x_proj and dt_proj are batched products on (B, ., L), and out_proj
        writes (B, D, L), seen as (B, L, D). The hook points see (B, L, .) views. Δ's bias and softplus run inside
        the scan; when a hook is attached to hook_delta, Δ is computed explicitly for it, and a Δ the hook returns
        goes to the scan as final."""
        K = self.cfg.d_conv
        xs, z = self._in_proj_cf(x)  # (B, E, L) each
        prev = None if state is None else state[0][..., 1:].to(xs.dtype)  # the last K - 1 inputs (B, E, K - 1)
        xs_new = causal_conv1d_silu(xs, self.conv1d.weight, self.conv1d.bias, prev,
                                    fused=self.cfg.scan_impl == "fused")  # (B, E, L)
        xs_new = _cf(self.hook_x(_lf(xs_new)))
        delta, delta_bias, B, C = self._ssm_params_cf(xs_new)
        z = _cf(self.hook_gate(_lf(z)))
        y, ssm_state = selective_scan(
            xs_new, delta, -torch.exp(_work(self.A_log)), B, C, self.D, z, delta_bias=delta_bias,
            delta_softplus=delta_bias is not None, return_last_state=True,
            initial_state=None if state is None else state[1], impl=self.cfg.scan_impl, chunk_size=self.cfg.chunk_size,
        )  # (B, E, L), (B, E, N)
        ssm_state = self.hook_ssm_state(ssm_state)
        y = self.hook_y(_lf(y))  # (B, L, E), a view of the scan's (B, E, L) output
        out = _lf(_matmul_cf(self.out_proj.weight, _cf(y)))  # (B, L, D), a view of (B, D, L)
        out = out if self.out_proj.bias is None else out + self.out_proj.bias
        conv_state = xs[..., -K:] if xs.shape[-1] >= K else torch.cat([prev if prev is not None else
                                                                       xs.new_zeros(*xs.shape[:2], K - 1), xs], -1)
        return out, (conv_state[..., -K:], ssm_state)

    def _in_proj_cf(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """in_proj(x) split into the x and z branches, each (B, E, L) contiguous: one batched product per branch
        (one product would leave each half strided, and its backward would concatenate the two gradients)."""
        E, w, b = self.cfg.d_inner, self.in_proj.weight, self.in_proj.bias
        xs, z = _matmul_cf(w[:E], _cf(x)), _matmul_cf(w[E:], _cf(x))
        return (xs, z) if b is None else (xs + b[:E, None], z + b[E:, None])

    def _ssm_params_cf(self, xs: Tensor) -> tuple[Tensor, Tensor | None, Tensor, Tensor]:
        """Δ before its bias and softplus (B, E, L), that bias (None when Δ is final), B and C (B, N, L) from the
        conv output xs (B, E, L); `ssm_params`'s values, channel-first, with the hook points applied."""
        if self.cfg.selective:
            R, N = self.cfg.rank, self.cfg.d_state
            dbc = _matmul_cf(self.x_proj.weight, xs)  # (B, R + 2N, L)
            dt, B, C = dbc[:, :R], dbc[:, R:R + N], dbc[:, R + N:]
            delta, bias = _matmul_cf(self.dt_proj.weight, dt), self.dt_proj.bias  # (B, E, L), (E,)
        else:
            delta, bias = xs.new_zeros(()).expand(xs.shape), self.dt_bias
            B, C = (p[:, None].expand(xs.shape[0], -1, xs.shape[-1]) for p in (self.B_param, self.C_param))
        if self.hook_delta.has_hooks:  # the hook sees Δ after softplus; when it replaces Δ, the scan takes that
            shown = _lf(F.softplus(_work(delta) + _work(bias)[:, None]))
            seen = self.hook_delta(shown)
            if seen is not shown:  # otherwise the scan still applies bias and softplus, so that hooks that only
                delta, bias = _cf(seen), None  # read leave the output bit for bit as it is without them
        return delta, bias, _cf(self.hook_B(_lf(B))), _cf(self.hook_C(_lf(C)))

    def step(self, x: Tensor, state: tuple[Tensor, Tensor]) -> tuple[Tensor, tuple[Tensor, Tensor]]:
        """One token: x (B, D) -> (out (B, D), new state); conv state (B, E, K), ssm state (B, E, N)."""
        xs, z = self.in_proj(x).chunk(2, dim=-1)  # (B, E)
        conv_state = torch.cat([state[0][..., 1:].to(xs.dtype), xs[..., None]], dim=-1)  # (B, E, K)
        xs = (conv_state * self.conv1d.weight[:, 0, :]).sum(-1)  # (B, E)
        if self.conv1d.bias is not None:
            xs = xs + self.conv1d.bias
        xs = F.silu(xs)
        delta, B, C = (t[:, 0] for t in self.ssm_params(xs[:, None]))
        A = -torch.exp(_work(self.A_log))  # (E, N)
        y, ssm_state = scan_step(state[1], xs, delta, A, B, C, self.D, z)  # selective_scan with L = 1
        return self.out_proj(y), (conv_state, ssm_state)


class ResidualBlock(nn.Module):
    """Pre-norm residual: h + Mixer(RMSNorm(h)); the residual h in float32 when `residual_in_fp32`."""

    def __init__(self, cfg: MambaConfig):
        super().__init__()
        self.residual_in_fp32 = cfg.residual_in_fp32
        self.norm = RMSNorm(cfg.d_model, cfg.norm_eps)
        self.mixer = MambaMixer(cfg)
        self.hook_resid_pre = HookPoint()  # (B, L, D)
        self.hook_resid_post = HookPoint()  # (B, L, D)

    def _residual(self, h: Tensor) -> Tensor:
        return _work(h) if self.residual_in_fp32 else h

    def forward(self, h: Tensor, state=None):
        h = self.hook_resid_pre(h)
        out, new_state = self.mixer(self.norm(h.to(self.norm.weight.dtype)), state)
        return self.hook_resid_post(self._residual(h) + out), new_state

    def step(self, h: Tensor, state):
        out, new_state = self.mixer.step(self.norm(h.to(self.norm.weight.dtype)), state)
        return self._residual(h) + out, new_state


class MambaLM(HookedModule):
    """Embedding, a stack of Mamba residual blocks, a final RMSNorm, and a tied unembedding (Section 4.2).

    Hook points (`run_with_cache`, `run_with_hooks`; in `step` only hook_delta / hook_B / hook_C fire, on (B, 1, .)):
        hook_embed                                      (B, L, D)
        blocks.{l}.hook_resid_pre / hook_resid_post     (B, L, D)
        blocks.{l}.mixer.hook_x                         (B, L, E)  after conv and SiLU, the SSM input
        blocks.{l}.mixer.hook_gate                      (B, L, E)  z, before its SiLU
        blocks.{l}.mixer.hook_delta                     (B, L, E)  Δ after softplus
        blocks.{l}.mixer.hook_B / hook_C                (B, L, N)
        blocks.{l}.mixer.hook_ssm_state                 (B, E, N)  the last state only (see Deviations)
        blocks.{l}.mixer.hook_y                         (B, L, E)  the gated SSM output, before out_proj
    """

    def __init__(self, cfg: MambaConfig):
        super().__init__()
        self.cfg = cfg
        self.embedding = nn.Embedding(cfg.d_vocab, cfg.d_model)
        self.blocks = nn.ModuleList(ResidualBlock(cfg) for _ in range(cfg.n_layers))
        self.norm_f = RMSNorm(cfg.d_model, cfg.norm_eps)
        if not cfg.tie_embeddings:
            self.lm_head = nn.Linear(cfg.d_model, cfg.d_vocab, bias=False)
        self.hook_embed = HookPoint()  # (B, L, D)
        self._init_weights()

    @torch.no_grad()
    def _init_weights(self) -> None:
        """Official init: embeddings N(0, 0.02), zero linear biases (not Δ's), out_proj scaled by 1/sqrt(n_layers)."""
        nn.init.normal_(self.embedding.weight, std=0.02)
        for block in self.blocks:
            m = block.mixer
            for lin in (m.in_proj, m.out_proj):
                if lin.bias is not None:
                    nn.init.zeros_(lin.bias)
            nn.init.kaiming_uniform_(m.out_proj.weight, a=math.sqrt(5))
            m.out_proj.weight /= math.sqrt(self.cfg.n_layers)

    def forward(self, idx: Tensor, state: State | None = None, return_state: bool = False):
        """idx (B, L) -> logits (B, L, V); with `return_state` also the state after the last token."""
        h = self.hook_embed(self.embedding(idx))  # (B, L, D)
        new_state = []
        for i, block in enumerate(self.blocks):
            h, s = block(h, None if state is None else state[i])
            new_state.append(s)
        logits = self.unembed(self.norm_f(h))  # (B, L, V)
        return (logits, new_state) if return_state else logits

    @property
    def W_U(self) -> Tensor:
        """The unembedding (D, V): the embedding transposed when tied, else the lm_head's."""
        return (self.embedding.weight if self.cfg.tie_embeddings else self.lm_head.weight).T

    def unembed(self, h: Tensor) -> Tensor:
        """Logits (..., V) in the model's dtype from the final-norm output (..., D)."""
        w = self.embedding.weight if self.cfg.tie_embeddings else self.lm_head.weight
        return F.linear(h.to(w.dtype), w)

    def init_state(self, batch: int) -> State:
        """Zero state per layer: conv (B, E, K) in the model's dtype, SSM (B, E, N) in float32 (float64)."""
        w = self.embedding.weight
        E, N, K = self.cfg.d_inner, self.cfg.d_state, self.cfg.d_conv
        return [(w.new_zeros(batch, E, K), _work(w).new_zeros(batch, E, N)) for _ in self.blocks]

    def step(self, token: Tensor, state: State) -> tuple[Tensor, State]:
        """One token per sequence: token (B,) -> (logits (B, V), new state). Constant time and memory per token."""
        h = self.embedding(token)  # (B, D)
        new_state = []
        for block, s in zip(self.blocks, state):
            h, s = block.step(h, s)
            new_state.append(s)
        return self.unembed(self.norm_f(h)), new_state

    @torch.no_grad()
    def last_logits(self, idx: Tensor, segment: int = 4096) -> Tensor:
        """Logits at the last position (B, V), reading idx (B, L) in segments: memory O(segment), flat in L."""
        state = self.init_state(idx.shape[0])
        for s in range(0, idx.shape[1], segment):
            logits, state = self(idx[:, s : s + segment], state=state, return_state=True)
        return logits[:, -1]

    @classmethod
    def from_hf(cls, hf_model: Any) -> MambaLM:
        """A MambaLM with the config and weights of a transformers `MambaForCausalLM` (or bare `MambaModel`), or of
        the folder such a model was saved to with `save_pretrained` (read offline; hub names are refused).

        Config fields read: vocab_size, hidden_size, num_hidden_layers, state_size, intermediate_size (which wins over
        expand, as in transformers), conv_kernel, time_step_rank, use_bias, use_conv_bias, layer_norm_epsilon,
        residual_in_fp32, tie_word_embeddings, hidden_act, and the time_step_* init ranges. Ignored because they do
        not change the function: use_cache, use_mambapy, use_associative_scan, initializer_range,
        rescale_prenorm_residual, time_step_init_scheme, token ids. Refused (ValueError, one line): a model type
        other than "mamba", hidden_act other than SiLU. The result has the HF model's dtype.
        """
        hf = load_hf(hf_model, "MambaForCausalLM")
        c = hf.config
        if getattr(c, "model_type", "mamba") != "mamba":
            raise ValueError(f"MambaLM.from_hf loads Mamba-1 models (model_type 'mamba'), got {c.model_type!r}")
        if c.hidden_act not in ("silu", "swish"):
            raise ValueError(f"MambaLM applies SiLU after the conv (the paper's); hidden_act={c.hidden_act!r} is not "
                             f"supported")
        cfg = MambaConfig(
            d_vocab=c.vocab_size, d_model=c.hidden_size, n_layers=c.num_hidden_layers, d_state=c.state_size,
            expand=c.expand, d_inner_size=c.intermediate_size, d_conv=c.conv_kernel, dt_rank=int(c.time_step_rank),
            dt_min=c.time_step_min, dt_max=c.time_step_max, dt_init_floor=c.time_step_floor,
            dt_scale=c.time_step_scale, conv_bias=c.use_conv_bias, bias=c.use_bias, norm_eps=c.layer_norm_epsilon,
            residual_in_fp32=c.residual_in_fp32, tie_embeddings=bool(getattr(c, "tie_word_embeddings", True)),
        )
        sd = {}
        for k, v in hf.state_dict().items():
            k = k.removeprefix("backbone.")
            if k == "lm_head.weight" and cfg.tie_embeddings:
                continue  # tied to the embedding (checked below)
            k = k.replace("embeddings.", "embedding.", 1) if k.startswith("embeddings.") else k
            sd[k.replace("layers.", "blocks.", 1) if k.startswith("layers.") else k] = v.detach().clone()
        with torch.device("meta"):  # no init work and no draw from the global RNG: every tensor is loaded below
            model = cls(cfg)
        model.load_state_dict(sd, strict=True, assign=True)
        lm_head = hf.get_output_embeddings() if hasattr(hf, "get_output_embeddings") else None
        if cfg.tie_embeddings and lm_head is not None and not torch.equal(lm_head.weight, model.embedding.weight):
            raise ValueError("the HF config says tie_word_embeddings but its lm_head differs from its embeddings")
        return model

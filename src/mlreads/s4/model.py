"""S4 / S4D / LSSL layers and the sequence classifier, with the convolutional and the recurrent mode.

Papers: S4 (arXiv 2111.00396) §3 and App. D.2 (the block: SSM per channel, D skip, GELU, position-wise linear + GLU,
dropout, pre-norm, mean pooling for classification; A, B, Δ trained at lr <= 1e-3 without weight decay);
S4D (arXiv 2206.11893) §3-4 (diagonal A, ZOH or bilinear, Vandermonde kernel); LSSL (arXiv 2110.13985) §3, §5.4
(dense A, fixed or trained, the random-A ablation).

Glossary: d_model -> H (independent SSM channels), d_state -> N, log_dt -> log Δ, a_log_re / a_im -> Re Λ = -exp(.),
Im Λ, b -> B, c -> C, c_tilde -> C̃ = C(I - Ā^L), p -> P̃, a -> dense A, d -> D (skip).

Numerics: kernels run in float32 / complex64. Against float64 the kernels agree to ~1e-4 relative (tests use
rtol=1e-3, atol=1e-4 for float32).

Randomness: `SequenceClassifier(cfg, generator)` draws every initial value from `generator` (None: torch's global
RNG, as torch's own layers do; build it under `core.seeding.init_rng`). Which parameters the papers train at a low
learning rate without weight decay is `SequenceClassifier.ssm_parameters()`; the groups themselves are a training
concern (`core.train.param_groups`).

Deviations:
- The S4 (DPLR) kernel shares Λ and P̃ across channels and trains C̃ directly, like the S4 code; the recurrent mode
  recovers C = C̃ (I - Ā^L)⁻¹ for the training length L and materialises the dense (H, N, N) Ā.
- Dropout is element-wise (S4 uses a dropout tied over L).
- log Δ is clamped to [log 1e-4, log 1] before exp, so Δ stays finite and positive even if an optimiser pushes log Δ
  far (the NaN of state-spaces/s4 issue #138); Re Λ is clamped to <= -1e-4. The papers do neither.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import Tensor, nn

from mlreads.core.fields import in_range, positive
from mlreads.core.nn.hooks import HookedModule, HookPoint
from mlreads.s4 import discretize, hippo
from mlreads.s4.kernels import (
    StepForm,
    c_from_c_tilde,
    dplr_dense,
    dplr_kernel,
    fft_conv,
    krylov_kernel,
    ssm_step,
    vandermonde_kernel,
)  # fmt: skip

LOG_DT_MIN, LOG_DT_MAX = math.log(1e-4), math.log(1.0)


@dataclass(frozen=True)
class S4Config:
    d_input: int = positive(1)  # features per time step (1 for pixel MNIST)
    d_model: int = positive(64)  # H, channels
    d_state: int = positive(64)  # N, real state size (diagonal/DPLR kernels keep N/2 complex modes)
    n_layers: int = positive(4)
    n_classes: int = positive(10)
    kernel: Literal["s4d", "s4", "dense"] = "s4d"
    init: Literal["lin", "inv", "legs"] = "lin"  # S4D init of Λ
    disc: Literal["zoh", "bilinear"] = "zoh"  # s4 (DPLR) always uses bilinear
    a_init: Literal["legs", "legt", "random"] = "legs"  # dense (LSSL) kernel: the A matrix
    trainable_a: bool = False  # dense kernel: train A and B (LSSL "A trained") or keep them fixed
    dt_min: float = positive(1e-3)  # log-uniform init range of Δ
    dt_max: float = positive(1e-1)
    dropout: float = in_range(0.0, 0.0, 1.0)
    prenorm: bool = True


def _complex_param(z: Tensor) -> nn.Parameter:
    """A complex tensor stored as a real (…, 2) parameter (optimisers and safetensors handle real tensors)."""
    return nn.Parameter(torch.view_as_real(z.to(torch.complex64)).clone())


def _log_dt(d_model: int, cfg: S4Config, gen: torch.Generator | None) -> nn.Parameter:
    """log Δ ~ U[log dt_min, log dt_max] per channel (S4 App. D.2)."""
    r = torch.rand(d_model, generator=gen)
    return nn.Parameter(r * (math.log(cfg.dt_max) - math.log(cfg.dt_min)) + math.log(cfg.dt_min))


def _dt(log_dt: Tensor) -> Tensor:
    """Δ = exp(clamped log Δ): the guard against a diverging log Δ."""
    return torch.exp(log_dt.clamp(LOG_DT_MIN, LOG_DT_MAX))


def _lam(a_log_re: Tensor, a_im: Tensor) -> Tensor:
    return torch.complex((-torch.exp(a_log_re)).clamp(max=-1e-4), a_im)


def _randn_complex(shape: tuple[int, ...], gen: torch.Generator | None) -> Tensor:
    """Complex normal with E|z|² = 1."""
    return torch.complex(torch.randn(shape, generator=gen), torch.randn(shape, generator=gen)) * math.sqrt(0.5)


class S4DKernel(nn.Module):
    """Diagonal SSM kernel (S4D): N/2 complex modes per channel, conjugate half, Vandermonde kernel."""

    def __init__(self, cfg: S4Config, gen: torch.Generator | None):
        super().__init__()
        h, half = cfg.d_model, cfg.d_state // 2
        lam, b = hippo.s4d_init(cfg.d_state, cfg.init)  # (N/2,)
        self.disc = cfg.disc
        self.log_dt = _log_dt(h, cfg, gen)
        self.a_log_re = nn.Parameter(torch.log(-lam.real).float().repeat(h, 1))  # (H, N/2)
        self.a_im = nn.Parameter(lam.imag.float().repeat(h, 1))  # (H, N/2)
        self.b = _complex_param(b.repeat(h, 1))  # (H, N/2, 2)
        self.c = _complex_param(_randn_complex((h, half), gen))  # (H, N/2, 2)

    def ssm_parameters(self) -> list[nn.Parameter]:
        return [self.log_dt, self.a_log_re, self.a_im, self.b]

    def discrete(self) -> tuple[Tensor, Tensor, Tensor]:
        """(log Ā, B̄, C), each (H, N/2) complex."""
        lam, b, dt = _lam(self.a_log_re, self.a_im), torch.view_as_complex(self.b), _dt(self.log_dt)
        if self.disc == "zoh":
            a_bar, b_bar = discretize.zoh_diag(lam, b, dt)
            log_a_bar = dt[:, None] * lam  # exact log of exp(ΔΛ)
        else:
            a_bar, b_bar = discretize.bilinear_diag(lam, b, dt)
            log_a_bar = torch.log(a_bar)
        return log_a_bar, b_bar, torch.view_as_complex(self.c)

    def forward(self, length: int) -> Tensor:
        log_a_bar, b_bar, c = self.discrete()
        return vandermonde_kernel(c * b_bar, log_a_bar, length)  # (H, L)

    def step_form(self, length: int) -> StepForm:
        log_a_bar, b_bar, c = self.discrete()
        return StepForm(torch.exp(log_a_bar), b_bar, c, diagonal=True, scale=2.0)


class S4Kernel(nn.Module):
    """DPLR SSM kernel (S4): A = Λ - P̃P̃* from HiPPO-LegS, bilinear, Cauchy + Woodbury + irfft; C̃ trained."""

    def __init__(self, cfg: S4Config, gen: torch.Generator | None):
        super().__init__()
        h, half = cfg.d_model, cfg.d_state // 2
        form = hippo.dplr_legs(cfg.d_state)
        self.log_dt = _log_dt(h, cfg, gen)
        self.a_log_re = nn.Parameter(torch.log(-form.lam.real).float())  # (N/2,)
        self.a_im = nn.Parameter(form.lam.imag.float())  # (N/2,)
        self.p = _complex_param(form.p)  # (N/2, 2)
        self.b = _complex_param(form.b.repeat(h, 1))  # (H, N/2, 2)
        self.c_tilde = _complex_param(_randn_complex((h, half), gen))  # (H, N/2, 2)

    def ssm_parameters(self) -> list[nn.Parameter]:
        return [self.log_dt, self.a_log_re, self.a_im, self.p, self.b]

    def forward(self, length: int) -> Tensor:
        lam, p = _lam(self.a_log_re, self.a_im), torch.view_as_complex(self.p)
        b, c_t = torch.view_as_complex(self.b), torch.view_as_complex(self.c_tilde)
        return dplr_kernel(lam, p, b, c_t, _dt(self.log_dt), length)  # (H, L)

    def step_form(self, length: int) -> StepForm:
        a = dplr_dense(_lam(self.a_log_re, self.a_im), torch.view_as_complex(self.p))  # (N, N) complex
        b = torch.view_as_complex(self.b)
        b_full = torch.cat([b, b.conj()], dim=-1)  # (H, N)
        dt = _dt(self.log_dt).to(a.dtype)
        a_bar, b_bar = discretize.bilinear(a, b_full, dt)  # (H, N, N), (H, N)
        c_t = torch.view_as_complex(self.c_tilde)
        c = c_from_c_tilde(torch.cat([c_t, c_t.conj()], dim=-1), a_bar, length)  # (H, N)
        return StepForm(a_bar, b_bar, c, diagonal=False, scale=1.0)


class DenseKernel(nn.Module):
    """LSSL-style kernel: one dense A (N, N) shared by the H channels, fixed or trained; Δ and C per channel."""

    def __init__(self, cfg: S4Config, gen: torch.Generator | None):
        super().__init__()
        n = cfg.d_state
        if cfg.a_init == "random":
            a, b = hippo.random_a(n, gen, dtype=torch.float32)
        else:
            a, b = (hippo.legs if cfg.a_init == "legs" else hippo.legt)(n, dtype=torch.float32)
        self.disc = cfg.disc
        if cfg.trainable_a:
            self.a, self.b = nn.Parameter(a), nn.Parameter(b)
        else:
            self.register_buffer("a", a)
            self.register_buffer("b", b)
        self.log_dt = _log_dt(cfg.d_model, cfg, gen)
        self.c = nn.Parameter(torch.randn(cfg.d_model, n, generator=gen) / math.sqrt(n))  # (H, N)

    def ssm_parameters(self) -> list[nn.Parameter]:
        return [p for p in (self.log_dt, self.a, self.b) if isinstance(p, nn.Parameter)]

    def discrete(self) -> tuple[Tensor, Tensor]:
        fn = discretize.zoh if self.disc == "zoh" else discretize.bilinear
        return fn(self.a, self.b, _dt(self.log_dt))  # (H, N, N), (H, N)

    def forward(self, length: int) -> Tensor:
        a_bar, b_bar = self.discrete()
        return krylov_kernel(self.c, a_bar, b_bar, length)  # (H, L)

    def step_form(self, length: int) -> StepForm:
        a_bar, b_bar = self.discrete()
        return StepForm(a_bar, b_bar, self.c, diagonal=False, scale=1.0)


KERNELS = {"s4d": S4DKernel, "s4": S4Kernel, "dense": DenseKernel}


def _linear(d_in: int, d_out: int, gen: torch.Generator | None) -> nn.Linear:
    """nn.Linear with PyTorch's default U(-1/sqrt(fan_in), 1/sqrt(fan_in)) init, drawn from `gen` only (skip_init:
    the layer's own reset, which would draw from the global RNG, never runs)."""
    layer = torch.nn.utils.skip_init(nn.Linear, d_in, d_out)
    bound = 1 / math.sqrt(layer.in_features)
    with torch.no_grad():
        layer.weight.copy_(torch.rand(layer.weight.shape, generator=gen) * 2 * bound - bound)
        if layer.bias is not None:
            layer.bias.copy_(torch.rand(layer.bias.shape, generator=gen) * 2 * bound - bound)
    return layer


class S4Layer(nn.Module):
    """x + Dropout(GLU(W · Dropout(GELU(SSM(Norm(x)) + D ⊙ Norm(x))))), pre-norm (post-norm if cfg.prenorm False)."""

    def __init__(self, cfg: S4Config, gen: torch.Generator | None):
        super().__init__()
        h = cfg.d_model
        self.prenorm = cfg.prenorm
        self.norm = nn.LayerNorm(h)
        self.kernel = KERNELS[cfg.kernel](cfg, gen)
        self.d = nn.Parameter(torch.randn(h, generator=gen))  # (H,) skip
        self.out = _linear(h, 2 * h, gen)
        self.drop = nn.Dropout(cfg.dropout)
        self.hook_resid_pre, self.hook_ssm_out, self.hook_resid_post = HookPoint(), HookPoint(), HookPoint()

    def forward(self, x: Tensor) -> Tensor:  # (B, L, H) -> (B, L, H)
        x = self.hook_resid_pre(x)
        z = self.norm(x) if self.prenorm else x
        u = rearrange(z, "b l h -> b h l")
        y = fft_conv(u, self.kernel(u.shape[-1]), self.d)  # (B, H, L)
        y = self.hook_ssm_out(rearrange(y, "b h l -> b l h"))
        y = self.drop(F.glu(self.out(self.drop(F.gelu(y))), dim=-1))  # (B, L, H)
        x = x + y
        return self.hook_resid_post(x if self.prenorm else self.norm(x))

    def step(self, x: Tensor, state: Tensor, form: StepForm) -> tuple[Tensor, Tensor]:
        """One time step in recurrent mode: x (B, H), state (B, H, N'); form = kernel.step_form(L)."""
        z = self.norm(x) if self.prenorm else x
        y, state = ssm_step(form, state, z.to(form.b_bar.dtype))
        y = y.to(x.dtype) + self.d * z  # (B, H)
        y = self.drop(F.glu(self.out(self.drop(F.gelu(y))), dim=-1))
        x = x + y
        return (x if self.prenorm else self.norm(x)), state


class SequenceClassifier(HookedModule):
    """Linear encoder -> n_layers S4 layers -> final norm -> mean over L -> linear decoder (S4 App. D.2).

    Hook points (`run_with_cache`, `run_with_hooks`; the convolutional mode only, `features_recurrent` fires none):
        hook_embed                  (B, L, H)  the linear encoder's output
        blocks.{l}.hook_resid_pre   (B, L, H)  the layer's input
        blocks.{l}.hook_ssm_out     (B, L, H)  y = SSM(u) + D ⊙ u, before GELU
        blocks.{l}.hook_resid_post  (B, L, H)  the layer's output
        hook_features               (B, L, H)  after the final norm (`features(x)`)
        hook_logits                 (B, n_classes)
    """

    def __init__(self, cfg: S4Config, generator: torch.Generator | None = None):
        super().__init__()
        gen = generator  # every initial value is drawn from it, in construction order
        self.cfg = cfg
        self.encoder = _linear(cfg.d_input, cfg.d_model, gen)
        self.blocks = nn.ModuleList(S4Layer(cfg, gen) for _ in range(cfg.n_layers))
        self.norm_f = nn.LayerNorm(cfg.d_model) if cfg.prenorm else nn.Identity()
        self.decoder = _linear(cfg.d_model, cfg.n_classes, gen)
        self.hook_embed, self.hook_features, self.hook_logits = HookPoint(), HookPoint(), HookPoint()

    def ssm_parameters(self) -> list[nn.Parameter]:
        """The state-space parameters (Δ, A, B; not C): the papers train them at lr <= 1e-3 without weight decay."""
        return [p for block in self.blocks for p in block.kernel.ssm_parameters()]

    def features(self, x: Tensor) -> Tensor:  # (B, L, d_input) -> (B, L, H)
        h = self.hook_embed(self.encoder(x))
        for block in self.blocks:
            h = block(h)
        return self.hook_features(self.norm_f(h))

    def forward(self, x: Tensor) -> Tensor:  # (B, L, d_input) -> (B, n_classes)
        return self.hook_logits(self.decoder(self.features(x).mean(dim=1)))

    @torch.no_grad()
    def features_recurrent(self, x: Tensor) -> Tensor:
        """The same features as `features`, computed one time step at a time (RNN mode). (B, L, d_input) -> (B, L, H)."""
        length = x.shape[1]
        forms = [block.kernel.step_form(length) for block in self.blocks]
        states = [torch.zeros(x.shape[0], *f.b_bar.shape, dtype=f.b_bar.dtype) for f in forms]  # (B, H, N')
        out = []
        for t in range(length):
            h = self.encoder(x[:, t])  # (B, H)
            for i, block in enumerate(self.blocks):
                h, states[i] = block.step(h, states[i], forms[i])
            out.append(self.norm_f(h))
        return torch.stack(out, dim=1)  # (B, L, H)


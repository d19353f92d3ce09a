"""DDPM: Ho, Jain & Abbeel, "Denoising Diffusion Probabilistic Models", NeurIPS 2020 (arXiv 2006.11239).

Read with Lilian Weng's "What are Diffusion Models?" (2021). Section 2: the forward process q(x_t | x_{t-1}) =
N(sqrt(1 - beta_t) x_{t-1}, beta_t I) (Eq 2) has the closed form q(x_t | x_0) = N(sqrt(alpha_bar_t) x_0,
(1 - alpha_bar_t) I) (Eq 4); its posterior q(x_{t-1} | x_t, x_0) = N(mu_tilde, beta_tilde I) (Eq 6-7); the bound L
(Eq 5) is L_T + sum_{t>1} L_{t-1} + L_0. Section 3.2: sigma_t^2 = beta_t or beta_tilde_t, the eps-parameterisation
mu_theta = (x_t - beta_t / sqrt(1 - alpha_bar_t) eps_theta) / sqrt(alpha_t) (Eq 11) and its L_{t-1} (Eq 12);
L_simple = E ||eps - eps_theta(sqrt(alpha_bar) x_0 + sqrt(1 - alpha_bar) eps, t)||^2 (Eq 14). Algorithms 1 and 2.

Time is the paper's: t = 1..T, arrays indexed [t - 1]; diffusers' timestep is t - 1.

Glossary (code -> paper):
    betas, alphas, alpha_bar     beta_t, alpha_t = 1 - beta_t, alpha_bar_t = prod_{s<=t} alpha_s
    beta_tilde                   Eq 7: (1 - alpha_bar_{t-1}) / (1 - alpha_bar_t) beta_t
    coef_x0, coef_xt             Eq 7: mu_tilde = coef_x0 x_0 + coef_xt x_t
    sigma2 "beta" / "beta_tilde" the two fixed reverse variances of Section 3.2 (diffusers' variance_type
                                 "fixed_large" / "fixed_small")
    param "eps" / "mu"           what the network predicts: eps (Eq 11) or mu_tilde directly (Table 2's first rows);
          "x0" / "v"             or x_0 (diffusers' prediction_type "sample"), or v = sqrt(alpha_bar) eps -
                                 sqrt(1 - alpha_bar) x_0 (Salimans & Ho 2022, a later paper: diffusers' "v_prediction")
    times                        a descending sub-sequence of 1..T to sample on (`respace`; diffusers' set_timesteps)

Every string switch (`sigma2`, `param`, the objective) refuses a value it does not know with a one-line ValueError.
Beyond the paper, for diffusers users: `schedules.beta_schedule` (linear, scaled_linear, and Nichol & Dhariwal 2021's
cosine, a later paper) and `schedules.timesteps` (leading / trailing / linspace spacing).

Deviations:
- The decoder L_0 is a Gaussian N(x_0; mu_theta(x_1, 1), beta_1 I) density in nats, for continuous data (2-D toy
  sets); the paper's discretised decoder (Eq 13) is for 8-bit images. Sampling does not clip x_0 (Algorithm 2 does
  not; the official code and diffusers' default `clip_sample=True` do: `clip_x0=True` in `step`/`sample`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal, get_args

import numpy as np
import torch
from torch import Tensor, nn

from mlreads.core.fields import positive
from mlreads.core.nn.hooks import HookedModule, HookPoint


def linear_betas(T: int = 1000, beta_1: float = 1e-4, beta_T: float = 0.02) -> Tensor:
    """Section 4: beta_t linear from beta_1 = 1e-4 to beta_T = 0.02, float64."""
    return torch.linspace(beta_1, beta_T, T, dtype=torch.float64)


@dataclass(frozen=True)
class Schedule:
    """The fixed quantities of the forward process, float64, indexed [t - 1] for t = 1..T."""

    betas: Tensor

    @property
    def T(self) -> int:
        return len(self.betas)

    @property
    def alphas(self) -> Tensor:
        return 1.0 - self.betas

    @property
    def alpha_bar(self) -> Tensor:
        return torch.cumprod(self.alphas, 0)

    @property
    def alpha_bar_prev(self) -> Tensor:
        """alpha_bar_{t-1}, with alpha_bar_0 = 1."""
        return torch.cat([self.betas.new_ones(1), self.alpha_bar[:-1]])

    @property
    def beta_tilde(self) -> Tensor:
        """Eq 7: the posterior variance (1 - alpha_bar_{t-1}) / (1 - alpha_bar_t) * beta_t (zero at t = 1)."""
        return (1 - self.alpha_bar_prev) / (1 - self.alpha_bar) * self.betas

    @property
    def coef_x0(self) -> Tensor:
        """Eq 7: sqrt(alpha_bar_{t-1}) beta_t / (1 - alpha_bar_t)."""
        return self.alpha_bar_prev.sqrt() * self.betas / (1 - self.alpha_bar)

    @property
    def coef_xt(self) -> Tensor:
        """Eq 7: sqrt(alpha_t) (1 - alpha_bar_{t-1}) / (1 - alpha_bar_t)."""
        return self.alphas.sqrt() * (1 - self.alpha_bar_prev) / (1 - self.alpha_bar)

    def sigma2(self, kind: Literal["beta", "beta_tilde"]) -> Tensor:
        """Section 3.2: sigma_t^2 = beta_t or beta_tilde_t."""
        _choice("sigma2", kind, SIGMA2)
        return self.betas if kind == "beta" else self.beta_tilde


SIGMA2 = ("beta", "beta_tilde")
PARAMS = ("eps", "mu", "x0", "v")


def _choice(field: str, value: str, choices: tuple[str, ...]) -> None:
    """A string switch refuses what it does not know, instead of reading it as "the other option"."""
    if value not in choices:
        raise ValueError(f"{field}={value!r} is not one of {choices}")


def respace(s: Schedule, times) -> Schedule:
    """The chain on a sub-sequence of its times (distinct, in 1..T): a schedule with alpha_bar'_k = alpha_bar at the
    k-th smallest time, i.e. beta'_k = 1 - alpha_bar_{t_k} / alpha_bar_{t_{k-1}}, so that Eq 4, Eq 7 and Algorithm 2
    apply to it unchanged (Nichol & Dhariwal 2021, Section 4; diffusers' `set_timesteps`)."""
    asc = sorted(times)
    if len(set(asc)) != len(asc) or not asc or asc[0] < 1 or asc[-1] > s.T:
        raise ValueError(f"times must be distinct steps in 1..{s.T}, got {list(times)}")
    ab = s.alpha_bar[torch.tensor(asc) - 1]
    return Schedule(1 - ab / torch.cat([ab.new_ones(1), ab[:-1]]))


def _at(values: Tensor, t: Tensor, like: Tensor) -> Tensor:
    """values[t - 1] shaped to broadcast against `like` (B, ...), in like's dtype."""
    v = values.to(like.device)[t - 1].to(like.dtype)
    return v.reshape(-1, *([1] * (like.ndim - 1)))


def q_sample(s: Schedule, x0: Tensor, t: Tensor, eps: Tensor) -> Tensor:
    """Eq 4: x_t = sqrt(alpha_bar_t) x_0 + sqrt(1 - alpha_bar_t) eps."""
    ab = _at(s.alpha_bar, t, x0)
    return ab.sqrt() * x0 + (1 - ab).sqrt() * eps


def q_step(s: Schedule, x_prev: Tensor, t: Tensor, eps: Tensor) -> Tensor:
    """Eq 2: one forward step x_t = sqrt(1 - beta_t) x_{t-1} + sqrt(beta_t) eps."""
    b = _at(s.betas, t, x_prev)
    return (1 - b).sqrt() * x_prev + b.sqrt() * eps


def posterior(s: Schedule, x0: Tensor, xt: Tensor, t: Tensor) -> tuple[Tensor, Tensor]:
    """Eq 6-7: mean mu_tilde(x_t, x_0) and variance beta_tilde_t of q(x_{t-1} | x_t, x_0)."""
    mean = _at(s.coef_x0, t, x0) * x0 + _at(s.coef_xt, t, x0) * xt
    return mean, _at(s.beta_tilde, t, x0)


def x0_from_eps(s: Schedule, xt: Tensor, t: Tensor, eps: Tensor) -> Tensor:
    """Eq 4 inverted (Section 3.2): x_0 = (x_t - sqrt(1 - alpha_bar_t) eps) / sqrt(alpha_bar_t)."""
    ab = _at(s.alpha_bar, t, xt)
    return (xt - (1 - ab).sqrt() * eps) / ab.sqrt()


def mu_from_eps(s: Schedule, xt: Tensor, t: Tensor, eps: Tensor) -> Tensor:
    """Eq 11: mu_theta = (x_t - beta_t / sqrt(1 - alpha_bar_t) eps_theta) / sqrt(alpha_t)."""
    b, ab = _at(s.betas, t, xt), _at(s.alpha_bar, t, xt)
    return (xt - b / (1 - ab).sqrt() * eps) / (1 - b).sqrt()


def gaussian_kl(mean1: Tensor, var1: Tensor, mean2: Tensor, var2: Tensor) -> Tensor:
    """KL(N(mean1, var1) || N(mean2, var2)) per element, in nats."""
    return 0.5 * (torch.log(var2 / var1) + (var1 + (mean1 - mean2) ** 2) / var2 - 1)


def prior_kl(s: Schedule, x0: Tensor) -> Tensor:
    """L_T = KL(q(x_T | x_0) || N(0, I)) per element, in nats (Eq 5's first term; no parameters)."""
    ab = s.alpha_bar[-1].to(x0.dtype)
    return gaussian_kl(ab.sqrt() * x0, (1 - ab).expand_as(x0), torch.zeros_like(x0), torch.ones_like(x0))


def predicted_x0(s: Schedule, out: Tensor, xt: Tensor, t: Tensor, param: str) -> Tensor:
    """x_0 as the network's output `out` implies it, for param "eps" (Eq 4 inverted), "x0" (itself) or "v"."""
    _choice("param", param, ("eps", "x0", "v"))
    if param == "eps":
        return x0_from_eps(s, xt, t, out)
    if param == "v":  # v = sqrt(ab) eps - sqrt(1 - ab) x_0 and x_t = sqrt(ab) x_0 + sqrt(1 - ab) eps
        ab = _at(s.alpha_bar, t, xt)
        return ab.sqrt() * xt - (1 - ab).sqrt() * out
    return out


def reverse_mean(s: Schedule, out: Tensor, xt: Tensor, t: Tensor, param: str = "eps", clip_x0: bool = False,
                 clip_range: float = 1.0) -> Tensor:  # fmt: skip
    """mu_theta(x_t, t) from the network's output: Eq 11 for "eps", `out` itself for "mu", else (and whenever x_0 is
    clipped) the posterior mean mu_tilde(x_t, x_0_hat) of Eq 7 at the predicted x_0."""
    _choice("param", param, PARAMS)
    if param == "mu":
        if clip_x0:
            raise ValueError("clip_x0=True needs param 'eps', 'x0' or 'v': a predicted mean has no x_0 to clip")
        return out
    if param == "eps" and not clip_x0:
        return mu_from_eps(s, xt, t, out)  # Eq 11, Algorithm 2's own form
    x0 = predicted_x0(s, out, xt, t, param)
    return posterior(s, x0.clamp(-clip_range, clip_range) if clip_x0 else x0, xt, t)[0]


def step(s: Schedule, model_out: Tensor, t: int, xt: Tensor, noise: Tensor, sigma2: str = "beta",
         param: str = "eps", clip_x0: bool = False, clip_range: float = 1.0) -> Tensor:  # fmt: skip
    """Algorithm 2, one step: x_{t-1} = mu_theta(x_t, t) + sigma_t z, with z = 0 at t = 1.

    `clip_x0`: the official code's (and diffusers' default `clip_sample`) variant, not Algorithm 2: predict x_0,
    clip it to [-clip_range, clip_range] (diffusers' clip_sample_range), and take the posterior mean
    mu_tilde(x_t, x_0_hat) (Eq 7). `t` indexes `s`, which may be a `respace`d schedule.
    """
    _choice("sigma2", sigma2, SIGMA2)
    tt = torch.full((xt.shape[0],), t, dtype=torch.long)
    mean = reverse_mean(s, model_out, xt, tt, param, clip_x0, clip_range)
    if t == 1:
        return mean
    return mean + _at(s.sigma2(sigma2), tt, xt).sqrt() * noise


# ------------------------------------------------------------------------------------------- the denoiser


def timestep_embedding(t: Tensor, d: int, max_period: float = 10_000.0) -> Tensor:
    """The Transformer's sinusoidal position embedding of t (Section 4: "diffusion time t is specified by adding
    the Transformer sinusoidal position embedding"), shape (B, d)."""
    half = d // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, dtype=torch.float32) / half)  # (d/2,)
    args = t.float()[:, None] * freqs[None]  # (B, d/2)
    return torch.cat([torch.sin(args), torch.cos(args)], dim=1)  # (B, d)


@dataclass(frozen=True)
class DenoiserConfig:
    d_data: int = positive(2)
    d_hidden: int = positive(128)
    n_layers: int = positive(3)
    d_time: int = positive(64)
    # a time-conditioned skip path from input to output: out = MLP(x_t, t) + c(t) x_t, c a scalar read from the time
    # embedding (zero at init). At large t the targets are near x_t itself (eps ~ x_t; mu ~ x_t / sqrt(alpha_t)),
    # an identity a dense MLP learns slowly and a U-Net's skips carry for free.
    skip: bool = False


class MLPDenoiser(HookedModule):
    """eps_theta(x_t, t) (or mu_theta): an MLP on x_t with the time embedding MLP(embed(t)) added before every SiLU
    (and, with cfg.skip, a time-conditioned skip c(t) x_t to the output). Deviation: the paper's U-Net is far too slow
    on one CPU thread; an MLP keeps Algorithms 1-2 and the objectives intact.

    `forward(x (B, d_data), t (B,))` -> (B, d_data). Hook points (`run_with_cache`, `run_with_hooks`):
        hook_time               (B, d_hidden)  MLP(embed(t)), added before every SiLU
        inp.hook_post           (B, d_hidden)  silu(inp(x) + hook_time)
        hidden.{i}.hook_post    (B, d_hidden)  silu(hidden[i](h) + hook_time)
        hook_skip               (B, 1)         c(t), the skip path's gain on x_t (only with cfg.skip)
        hook_out                (B, d_data)    the prediction (eps or mu)
    """

    hook_aliases = ((r"^hook_inp_post$", "inp.hook_post"), (r"^hook_hidden\.(\d+)$", r"hidden.\1.hook_post"))

    def __init__(self, cfg: DenoiserConfig):
        super().__init__()
        self.cfg = cfg
        self.time = nn.Sequential(nn.Linear(cfg.d_time, cfg.d_hidden), nn.SiLU(), nn.Linear(cfg.d_hidden, cfg.d_hidden))
        self.inp = nn.Linear(cfg.d_data, cfg.d_hidden)
        self.hidden = nn.ModuleList(nn.Linear(cfg.d_hidden, cfg.d_hidden) for _ in range(cfg.n_layers - 1))
        self.out = nn.Linear(cfg.d_hidden, cfg.d_data)
        self.hook_time, self.hook_inp_post, self.hook_out = HookPoint(), HookPoint(), HookPoint()
        self.hook_hidden = nn.ModuleList(HookPoint() for _ in self.hidden)
        if cfg.skip:
            self.skip_gate = nn.Linear(cfg.d_hidden, 1)
            nn.init.zeros_(self.skip_gate.weight)
            nn.init.zeros_(self.skip_gate.bias)
            self.hook_skip = HookPoint()

    def forward(self, x: Tensor, t: Tensor) -> Tensor:
        emb = self.hook_time(self.time(timestep_embedding(t, self.cfg.d_time)))  # (B, d_hidden)
        h = self.hook_inp_post(torch.nn.functional.silu(self.inp(x) + emb))  # (B, d_hidden)
        for layer, hook in zip(self.hidden, self.hook_hidden, strict=True):
            h = hook(torch.nn.functional.silu(layer(h) + emb))
        out = self.out(h)  # (B, d_data)
        if self.cfg.skip:
            out = out + self.hook_skip(self.skip_gate(emb)) * x  # c(t) (B, 1) times x_t
        return self.hook_out(out)


# ------------------------------------------------------------------------------------------- objectives


Objective = Literal["eps_simple", "eps_vlb", "mu_vlb", "mu_mse"]
OBJECTIVES: tuple[str, ...] = get_args(Objective)


def loss_terms(model: nn.Module, s: Schedule, x0: Tensor, t: Tensor, eps: Tensor, objective: Objective,
               sigma2: str = "beta") -> Tensor:  # fmt: skip
    """Per-example training loss for Table 2's rows, at the sampled t (uniform on 1..T):

    eps_simple  Eq 14, ||eps - eps_theta||^2 (mean over dimensions)
    eps_vlb     Eq 12, L_{t-1} = beta_t^2 / (2 sigma_t^2 alpha_t (1 - alpha_bar_t)) ||eps - eps_theta||^2 for t > 1,
                the decoder -log N(x_0; mu_theta(x_1, 1), sigma_1^2) at t = 1 (sums over dimensions, nats)
    mu_vlb      Eq 10, ||mu_tilde - mu_theta||^2 / (2 sigma_t^2), decoder at t = 1
    mu_mse      ||mu_tilde - mu_theta||^2, unweighted (Table 2's "||mu_tilde - mu_theta||^2" row)
    """
    _choice("objective", objective, OBJECTIVES)
    _choice("sigma2", sigma2, SIGMA2)
    xt = q_sample(s, x0, t, eps)
    out = model(xt, t)
    if objective == "eps_simple":
        return ((eps - out) ** 2).mean(dim=tuple(range(1, x0.ndim)))
    mu_theta = mu_from_eps(s, xt, t, out) if objective.startswith("eps") else out
    mu_tilde, _ = posterior(s, x0, xt, t)
    dims = tuple(range(1, x0.ndim))
    if objective == "mu_mse":
        return ((mu_tilde - mu_theta) ** 2).sum(dim=dims)
    return vlb_term(s, x0, mu_tilde, mu_theta, t, sigma2)


class ImportanceSampler:
    """Nichol & Dhariwal 2021 (Section 3.3): draw t with p_t proportional to sqrt(E[L_t^2]), estimated from the last
    `history` values of each term, uniform until every t has that many (mixed with `uniform_prob` of the uniform).
    A draw's loss is weighted by 1 / (T p_t), so the weighted batch mean estimates the same objective as uniform t
    (E_t[L_t] = the bound / T), with less variance: the VLB's terms differ by orders of magnitude across t."""

    def __init__(self, T: int, history: int = 10, uniform_prob: float = 0.001):
        self.T, self.history, self.uniform_prob = T, history, uniform_prob
        self.values = np.zeros((T, history))  # the last `history` losses of each t (row t - 1), a ring per row
        self.count = np.zeros(T, dtype=np.int64)  # how many losses each t has seen (the ring's next slot: mod history)

    def probs(self) -> Tensor:
        """p_t for t = 1..T, (T,)."""
        if bool((self.count < self.history).any()):
            return torch.full((self.T,), 1.0 / self.T, dtype=torch.float64)
        w = np.sqrt((self.values**2).mean(1))
        p = torch.from_numpy(w / w.sum())
        return p * (1 - self.uniform_prob) + self.uniform_prob / self.T

    def sample(self, n: int, gen: torch.Generator) -> tuple[Tensor, Tensor]:
        """(t in 1..T (n,), weights 1 / (T p_t) (n,))."""
        p = self.probs()
        idx = torch.multinomial(p, n, replacement=True, generator=gen)
        return idx + 1, (1.0 / (self.T * p[idx])).float()

    def update(self, t: Tensor, losses: Tensor) -> None:
        """Record each draw's (unweighted) loss in its t's ring, over the oldest value."""
        for ti, li in zip((t - 1).tolist(), losses.detach().double().tolist()):
            self.values[ti, self.count[ti] % self.history] = li
            self.count[ti] += 1


def vlb_term(s: Schedule, x0: Tensor, mu_tilde: Tensor, mu_theta: Tensor, t: Tensor, sigma2: str = "beta") -> Tensor:
    """L_{t-1} (Eq 5) per example in nats: KL(q(x_{t-1}|x_t,x_0) || N(mu_theta, sigma_t^2)) for t > 1 (Eq 10,
    with its constant), and the Gaussian decoder NLL -log N(x_0; mu_theta, beta_1) at t = 1."""
    dims = tuple(range(1, x0.ndim))
    var = _at(s.sigma2(sigma2), t, x0)
    var_post = _at(s.beta_tilde, t, x0)
    first = (t == 1).reshape(-1, *([1] * (x0.ndim - 1)))
    var1 = _at(s.betas, torch.ones_like(t), x0)
    kl = gaussian_kl(mu_tilde, torch.where(first, var1, var_post).expand_as(x0), mu_theta, var.expand_as(x0))
    nll = 0.5 * (math.log(2 * math.pi) + torch.log(var1) + (x0 - mu_theta) ** 2 / var1)
    return torch.where(first, nll, kl).sum(dim=dims)


@torch.no_grad()
def vlb(model: nn.Module, s: Schedule, x0: Tensor, gen: torch.Generator, objective_param: str = "eps",
        sigma2: str = "beta", per_example: bool = False) -> float | Tensor:  # fmt: skip
    """The full bound L = L_T + sum_{t=2}^T L_{t-1} + L_0 (Eq 5), nats per dimension, one x_t sample per t.
    `objective_param` is what the model predicts (any of PARAMS). `per_example`: each example's bound (B,) instead
    of their mean (for a paired standard error between two models given the same generator seed)."""
    _choice("param", objective_param, PARAMS)
    _choice("sigma2", sigma2, SIGMA2)
    total = prior_kl(s, x0).sum(dim=tuple(range(1, x0.ndim)))
    for t_int in range(1, s.T + 1):
        t = torch.full((x0.shape[0],), t_int, dtype=torch.long)
        eps = torch.randn(x0.shape, generator=gen, dtype=x0.dtype)
        xt = q_sample(s, x0, t, eps)
        mu_theta = reverse_mean(s, model(xt, t), xt, t, objective_param)
        mu_tilde, _ = posterior(s, x0, xt, t)
        total = total + vlb_term(s, x0, mu_tilde, mu_theta, t, sigma2)
    per_dim = total / x0[0].numel()
    return per_dim if per_example else float(per_dim.mean())


@torch.no_grad()
def sample(model: nn.Module, s: Schedule, shape: tuple[int, ...], gen: torch.Generator, sigma2: str = "beta",
           param: str = "eps", keep: tuple[int, ...] = (), clip_x0: bool = False, times=None, clip_range: float = 1.0
           ) -> tuple[Tensor, dict[int, Tensor]]:  # fmt: skip
    """Algorithm 2: x_T ~ N(0, I), then x_{t-1} = mu_theta(x_t, t) + sigma_t z for t = T..1. Returns x_0 and the
    intermediate x_t at the times in `keep` (for the reverse-chain figure).

    `times`: sample on fewer steps, a sub-sequence of 1..T (e.g. `schedules.timesteps(T, 50)`); each step goes from
    one of those times to the next smaller one on the `respace`d chain, and the model sees the original time. A
    predicted mean (param "mu") is tied to the one-step posterior and is refused there."""
    _choice("sigma2", sigma2, SIGMA2)
    if times is None:
        times, chain_s = range(s.T, 0, -1), s
    elif param == "mu":
        raise ValueError("param='mu' cannot sample on fewer steps (times): a predicted mean is a one-step posterior")
    else:
        times, chain_s = sorted(times, reverse=True), respace(s, times)
    x = torch.randn(shape, generator=gen)
    chain = {times[0]: x.clone()} if times[0] in keep else {}
    for k, t in zip(range(len(times), 0, -1), times):  # k indexes the (respaced) chain, t is the model's time
        noise = torch.randn(shape, generator=gen) if k > 1 else torch.zeros(shape)
        out = model(x, torch.full((shape[0],), t, dtype=torch.long))
        x = step(chain_s, out, k, x, noise, sigma2, param, clip_x0, clip_range)
        t_prev = times[len(times) - k + 1] if k > 1 else 0
        if t_prev in keep:
            chain[t_prev] = x.clone()
    return x, chain

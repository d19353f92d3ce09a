"""GAN: Goodfellow et al., "Generative Adversarial Nets", NIPS 2014 (arXiv 1406.2661).

Eq 1: min_G max_D V(D, G) = E_{x ~ p_data} log D(x) + E_{z ~ p_z} log(1 - D(G(z))). Algorithm 1: k steps of ascent
on V for D, then one step for G. Section 3: train G to maximise log D(G(z)) instead (the non-saturating loss).
Section 4.1 Prop 1: for fixed G the optimal D is D*_G(x) = p_data(x) / (p_data(x) + p_g(x)) (Eq 2). Thm 1:
C(G) = max_D V(D, G) = -log 4 + 2 JSD(p_data || p_g), minimal exactly when p_g = p_data. The MNIST model (the
official goodfeli/adversarial `mnist.yaml`): G maps a 100-d z, uniform on [-sqrt 3, sqrt 3] (unit variance), through
two ReLU layers of 1200 units to 784 sigmoid outputs; D is two maxout layers (240 units x 5 pieces) with dropout (input 0.8 keep, hidden 0.5) and a
sigmoid unit.

Glossary (code -> paper):
    d_z              the dimension of z (100)
    gen, disc        G and D; `disc` returns the logit of D(x), so D(x) = sigmoid(disc(x))
    k                Algorithm 1's discriminator steps per generator step
    g_loss kind      "non_saturating" (Section 3, -log D(G(z))) or "saturating" (Eq 1, log(1 - D(G(z))))

Deviations:
- The output bias of G is set to the logit of the data's mean pixel (as the official config's init_bias). The
  weights keep torch's default init here; gan/mnist's official recipe (exp_gan_mnist.official_init) redraws them
  from the official config's uniform ranges.
- Dropout in D uses inverted scaling at training time (torch), the official code scales at test time; equivalent
  in expectation.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from itertools import pairwise
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from mlreads.core.fields import in_range, positive
from mlreads.core.nn.hooks import HookedModule, HookPoint

# Hook points on a ModuleList beside `hidden` (hook_hidden.{i}) are published as hidden.{i}.hook_post.
HIDDEN_ALIASES = ((r"^hook_hidden\.(\d+)$", r"hidden.\1.hook_post"),)


class Maxout(nn.Module):
    """Goodfellow et al. 2013: h_i = max_j (x W_{ij} + b_{ij}) over `n_pieces` linear pieces."""

    def __init__(self, d_in: int, d_out: int, n_pieces: int):
        super().__init__()
        self.d_out, self.n_pieces = d_out, n_pieces
        self.linear = nn.Linear(d_in, d_out * n_pieces)

    def forward(self, x: Tensor) -> Tensor:
        h = self.linear(x).view(*x.shape[:-1], self.d_out, self.n_pieces)  # (B, d_out, pieces)
        return h.max(dim=-1).values  # (B, d_out)


@dataclass(frozen=True)
class GANConfig:
    d_data: int = positive(784)
    d_z: int = positive(100)
    d_gen: tuple[int, ...] = positive((1200, 1200))  # ReLU hidden layers of G
    d_disc: tuple[int, ...] = positive((240, 240))  # maxout units per hidden layer of D
    n_pieces: int = positive(5)
    disc_input_keep: float = in_range(0.8, 0.0, 1.0, lo_open=True, hi_open=False)
    disc_hidden_keep: float = in_range(0.5, 0.0, 1.0, lo_open=True, hi_open=False)
    out_sigmoid: bool = True  # images in [0, 1]; False for real-valued toy data
    disc_kind: Literal["maxout", "mlp"] = "maxout"
    # p_z: N(0, I), or uniform on [-sqrt 3, sqrt 3]^d_z (unit variance, bounded: the official mnist.yaml's `uniform`)
    noise: Literal["gaussian", "uniform"] = "gaussian"


class Generator(HookedModule):
    """G: z (B, d_z) -> samples (B, d_data). Hook points (`run_with_cache`, `run_with_hooks`):
        hidden.{i}.hook_post    (B, d_gen[i])  the ReLU output of hidden layer i
        hook_out                (B, d_data)    G(z) (after the sigmoid when out_sigmoid)
    """

    hook_aliases = HIDDEN_ALIASES

    def __init__(self, cfg: GANConfig):
        super().__init__()
        self.cfg = cfg
        dims = (cfg.d_z, *cfg.d_gen)
        self.hidden = nn.ModuleList(nn.Linear(a, b) for a, b in pairwise(dims))
        self.out = nn.Linear(dims[-1], cfg.d_data)
        self.out_sigmoid = cfg.out_sigmoid
        self.hook_hidden = nn.ModuleList(HookPoint() for _ in self.hidden)
        self.hook_out = HookPoint()

    def forward(self, z: Tensor) -> Tensor:
        h = z  # (B, d_z)
        for layer, hook in zip(self.hidden, self.hook_hidden, strict=True):
            h = hook(F.relu(layer(h)))  # (B, d_gen[i])
        h = self.out(h)  # (B, d_data)
        return self.hook_out(torch.sigmoid(h) if self.out_sigmoid else h)


class Discriminator(HookedModule):
    """x (B, d_data) -> the logit of D(x) (B,). Hook points (`run_with_cache`, `run_with_hooks`):
        hidden.{i}.hook_post    (B, d_disc[i])  hidden layer i's output (maxout or leaky ReLU), before its dropout
        hook_logit              (B,)            the logit of D(x)
    """

    hook_aliases = HIDDEN_ALIASES

    def __init__(self, cfg: GANConfig):
        super().__init__()
        self.cfg = cfg
        dims = (cfg.d_data, *cfg.d_disc)
        if cfg.disc_kind == "maxout":
            self.hidden = nn.ModuleList(Maxout(a, b, cfg.n_pieces) for a, b in pairwise(dims))
        else:
            self.hidden = nn.ModuleList(nn.Sequential(nn.Linear(a, b), nn.LeakyReLU(0.2))
                                        for a, b in pairwise(dims))  # fmt: skip
        self.drop_in = nn.Dropout(1 - cfg.disc_input_keep)
        self.drop_hidden = nn.Dropout(1 - cfg.disc_hidden_keep)
        self.out = nn.Linear(dims[-1], 1)
        self.hook_hidden = nn.ModuleList(HookPoint() for _ in self.hidden)
        self.hook_logit = HookPoint()

    def forward(self, x: Tensor) -> Tensor:
        h = self.drop_in(x)
        for layer, hook in zip(self.hidden, self.hook_hidden, strict=True):
            h = self.drop_hidden(hook(layer(h)))  # (B, d_disc[i])
        return self.hook_logit(self.out(h).squeeze(-1))  # (B,)


class GAN(nn.Module):
    """G and D in one module, so that `fit` can train them as two Phases of one model (Algorithm 1).

    GAN has no forward of its own; read activations with `model.gen.run_with_cache(z)` and
    `model.disc.run_with_cache(x)` (hook names in `Generator` and `Discriminator`).
    """

    def __init__(self, cfg: GANConfig):
        super().__init__()
        self.cfg = cfg
        self.gen = Generator(cfg)
        self.disc = Discriminator(cfg)

    def init_output_bias(self, data_mean: Tensor, eps: float = 1e-3) -> None:
        """G's output bias = logit of the data's marginal means, clipped to [eps, 1 - eps] (the official config's
        init_bias; pylearn2 clips at 1e-7)."""
        with torch.no_grad():
            p = data_mean.double().clamp(eps, 1 - eps)
            self.gen.out.bias.copy_(torch.log(p / (1 - p)).float())

    def noise(self, n: int, gen: torch.Generator) -> Tensor:
        """n draws of z from p_z (cfg.noise), (n, d_z)."""
        if self.cfg.noise == "uniform":
            return (2 * torch.rand(n, self.cfg.d_z, generator=gen) - 1) * math.sqrt(3.0)
        return torch.randn(n, self.cfg.d_z, generator=gen)

    def sample(self, n: int, gen: torch.Generator) -> Tensor:
        return self.gen(self.noise(n, gen))


def d_loss(model: GAN, batch: tuple[Tensor, Tensor]) -> Tensor:
    """Algorithm 1, D step: minimise -[log D(x) + log(1 - D(G(z)))] (ascent on Eq 1); G(z) is detached."""
    x, z = batch
    real = model.disc(x)
    fake = model.disc(model.gen(z).detach())
    return F.binary_cross_entropy_with_logits(real, torch.ones_like(real)) + \
        F.binary_cross_entropy_with_logits(fake, torch.zeros_like(fake))  # fmt: skip


def joint_loss(model: GAN, batch: tuple[Tensor, Tensor], kind: str = "non_saturating") -> Tensor:
    """D's and G's losses of one step whose gradients come from the same D and G, to be applied together (the
    official goodfeli/adversarial update: one graph, each player's cost differentiated with respect to its own
    parameters only, both steps taken at once; Algorithm 1 with k = 1 alternates instead). Backpropagating the sum
    gives D exactly d_loss's gradient (G(z) enters D's term detached) and G exactly g_loss's (D's parameters enter G's
    term detached); both terms see the same samples and the same dropout masks in D."""
    from torch.func import functional_call

    x, z = batch
    fake = model.gen(z)
    real_logit = model.disc(x)
    state = torch.get_rng_state()  # D's dropout draws from the global generator: replay it for G's term
    fake_logit = model.disc(fake.detach())
    frozen = {name: p.detach() for name, p in model.disc.named_parameters()}
    torch.set_rng_state(state)
    g_logit = functional_call(model.disc, frozen, (fake,))
    d = F.binary_cross_entropy_with_logits(real_logit, torch.ones_like(real_logit)) + \
        F.binary_cross_entropy_with_logits(fake_logit, torch.zeros_like(fake_logit))  # fmt: skip
    return d + _g_term(g_logit, kind)


def _g_term(logit: Tensor, kind: str) -> Tensor:
    if kind == "non_saturating":
        return F.binary_cross_entropy_with_logits(logit, torch.ones_like(logit))  # -log D(G(z))
    return -F.binary_cross_entropy_with_logits(logit, torch.zeros_like(logit))  # log(1 - D(G(z)))


def g_loss(model: GAN, batch: tuple[Tensor, Tensor], kind: str = "non_saturating") -> Tensor:
    """Algorithm 1, G step: Section 3's -log D(G(z)) (non-saturating) or Eq 1's log(1 - D(G(z)))."""
    _, z = batch
    return _g_term(model.disc(model.gen(z)), kind)


# ------------------------------------------------------------------------------------------- Section 4 theory


def normal_pdf(x: Tensor, mean: float, std: float) -> Tensor:
    return torch.exp(-0.5 * ((x - mean) / std) ** 2) / (std * math.sqrt(2 * math.pi))


def optimal_discriminator(p_data: Tensor, p_g: Tensor) -> Tensor:
    """Prop 1, Eq 2: D*_G(x) = p_data(x) / (p_data(x) + p_g(x))."""
    return p_data / (p_data + p_g)


def value(d: Tensor, p_data: Tensor, p_g: Tensor, dx: float) -> Tensor:
    """Eq 1 as an integral on a grid: V(D, G) = int p_data log D + p_g log(1 - D) dx."""
    eps = 1e-12
    return ((p_data * torch.log(d.clamp_min(eps)) + p_g * torch.log((1 - d).clamp_min(eps))) * dx).sum()


def jsd(p: Tensor, q: Tensor, dx: float) -> Tensor:
    """Jensen-Shannon divergence on a grid, nats: (KL(p || m) + KL(q || m)) / 2 with m = (p + q) / 2."""
    m = (p + q) / 2
    kl = lambda a: (a * torch.log(a.clamp_min(1e-300) / m.clamp_min(1e-300)) * dx).sum()
    return 0.5 * (kl(p) + kl(q))


def virtual_training_criterion(p_data: Tensor, p_g: Tensor, dx: float) -> Tensor:
    """Thm 1: C(G) = -log 4 + 2 JSD(p_data || p_g)."""
    return -math.log(4) + 2 * jsd(p_data, p_g, dx)

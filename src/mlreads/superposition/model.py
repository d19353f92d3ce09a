"""Toy models of superposition, batched over many independent instances.

Paper: Elhage et al. 2022, "Toy Models of Superposition" (arXiv 2209.10652), Sections 2 ("Demonstrating
Superposition": setup and loss), 7 ("Superposition in a Privileged Basis") and 8 ("Computation in Superposition").

Every tensor carries a leading instance axis I: one module holds I independent toy models and trains them in one set
of tensor ops (einsum over I). The loss a trainer minimises is the SUM of the per-instance losses, so each instance
gets exactly its own gradient, and Adam (elementwise) keeps their dynamics independent.

Glossary (code name -> paper symbol):
    n_features      n, the number of input features x_i
    d_hidden        m, the hidden width (h = W x lives in R^m)
    W               W, shape (I, m, n); column W[:, :, i] is feature i's direction W_i
    b               b, the output bias (I, n)
    importance      I_i, the per-feature loss weight (per instance: (I, n))
    feature_prob    1 - S, the probability a feature is non-zero (per instance: (I, n))
    W_in, W_out     W_1, W_2 of the absolute-value model (untied), Section 8

Models (Section 2, 7 and 8):
    "linear"       x' = W^T W x + b
    "relu"         x' = ReLU(W^T W x + b)
    "hidden_relu"  h = ReLU(W x), x' = ReLU(W^T h + b)
    AbsModel       y' = ReLU(W_2 ReLU(W_1 x) + b), trained on y = |x|

Randomness: a model draws its initial weights from the `generator` it is given (None: torch's global RNG, as torch's
own layers do), all instances at once: W ~ N(0, 2 / (m + n)) of shape (I, m, n). Data comes from `sample`'s generator.

Fast path: for tiny models (m * n <= TINY, e.g. the n=2, m=1 phase diagram with thousands of instances) `loss` calls
`toy_loss_tiny`, the same loss as `importance_weighted_mse(toy_forward(...))` computed one feature at a time with
(B, I) tensors (about 2x faster there than the einsums); tests hold it to reference.py's loops, gradients included.

Deviations:
- Instances share one stream of uniform draws: x[b, i, f] = U_val[b, f] if U_mask[b, f] < p[i, f] else 0. Each
  instance's data has exactly the paper's distribution; draws are correlated across instances (common random numbers),
  which makes an instance's data independent of how many instances are trained with it (batched == single runs).
- Xavier-normal init per instance on the (m, n) matrix (std = sqrt(2 / (m + n))); the paper's notebook calls
  xavier_normal_ on the whole (I, n, m) tensor, which makes the std depend on the number of instances.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor, nn

from mlreads.core.nn.hooks import HookedModule, HookPoint

Kind = Literal["linear", "relu", "hidden_relu"]
TINY = 8  # m * n at or below which ToyModel.loss takes the fast path toy_loss_tiny (same math, faster)


@dataclass(frozen=True)
class ToyConfig:
    n_features: int = 5  # n
    d_hidden: int = 2  # m
    n_instances: int = 1  # I, independent models trained together
    kind: Kind = "relu"


@dataclass(frozen=True)
class AbsConfig:
    n_features: int = 20  # n, inputs and outputs (y = |x|)
    d_hidden: int = 10  # neurons of the hidden ReLU layer
    n_instances: int = 1


# --- data -------------------------------------------------------------------------------------------------------


def sample_features(n_batch: int, feature_prob: Tensor, gen: torch.Generator, signed: bool = False) -> Tensor:
    """Sparse features (Section 2): x_i = 0 w.p. S = 1 - p, else U[0, 1] (U[-1, 1] when signed). Returns (B, I, F).

    feature_prob is (I, F). One (B, F) stream of uniforms is shared by the instances (see Deviations).
    """
    n_feat = feature_prob.shape[-1]
    u = torch.rand(n_batch, 2, n_feat, generator=gen, device=feature_prob.device)  # (B, 2, F)
    values = u[:, 1] * 2 - 1 if signed else u[:, 1]  # (B, F)
    return torch.where(u[:, None, 0] < feature_prob, values[:, None], 0.0)  # (B, I, F)


def importance_weighted_mse(out: Tensor, target: Tensor, importance: Tensor) -> Tensor:
    """Section 2 loss, per instance: L = mean_{batch, i} I_i (x_i - x'_i)^2. out, target (B, I, F) -> (I,)."""
    return (importance * (target - out) ** 2).mean(dim=(0, 2))  # (I,)


def geometric_importance(n_features: int, decay: float) -> Tensor:
    """I_i = decay^i, the paper's importance profile (e.g. 0.9^i in the intro, 0.7^i in the sparsity sweep)."""
    return decay ** torch.arange(n_features, dtype=torch.float32)  # (F,)


def xavier_normal_instances(n_instances: int, shape: Sequence[int], generator: torch.Generator | None) -> Tensor:
    """(I, *shape), each instance N(0, 2 / (fan_in + fan_out)) on its own (m, n) matrix (see Deviations)."""
    fan_out, fan_in = shape[-2], shape[-1]
    return torch.randn(n_instances, *shape, generator=generator) * math.sqrt(2.0 / (fan_in + fan_out))


def toy_hidden(W: Tensor, x: Tensor, kind: Kind) -> Tensor:
    """Section 2 (and 7): h = W x, with a ReLU for the "hidden_relu" model.

    Shapes: W (I, m, F), x (B, I, F) -> (B, I, m).
    """
    h = torch.einsum("imf,bif->bim", W, x)  # (B, I, m)
    return torch.relu(h) if kind == "hidden_relu" else h


def toy_readout(W: Tensor, b: Tensor, h: Tensor, kind: Kind) -> Tensor:
    """Section 2 (and 7): x' = act(W^T h + b) from the hidden vector h.

    Shapes: W (I, m, F), b (I, F), h (B, I, m) -> (B, I, F).
    """
    out = torch.einsum("imf,bim->bif", W, h) + b  # (B, I, F)
    return out if kind == "linear" else torch.relu(out)


def toy_forward(W: Tensor, b: Tensor, x: Tensor, kind: Kind) -> Tensor:
    """Section 2 (and 7): x' = act(W^T h + b), h = toy_hidden(W, x), batched over instances.

    Shapes: W (I, m, F), b (I, F), x (B, I, F) -> (B, I, F).
    """
    return toy_readout(W, b, toy_hidden(W, x, kind), kind)


def toy_loss_tiny(W: Tensor, b: Tensor, x: Tensor, importance: Tensor, kind: Kind) -> Tensor:
    """Fast path of `importance_weighted_mse(toy_forward(W, b, x, kind), x, importance)` for tiny m * n: the
    contractions over m and F become Python sums of (B, I) tensors, and the loss is summed one feature at a time
    without materialising the (B, I, F) output (for n=2, m=1 and thousands of instances this beats the batched
    matmuls about 2x). Twin: reference.toy_forward_ref + importance_weighted_mse_ref.

    Shapes: W (I, m, F), b (I, F), x (B, I, F), importance (I, F) -> (I,).
    """
    xs, n_feat = x.unbind(-1), W.shape[-1]  # F x (B, I)
    hs = [sum(xs[f] * W[:, k, f] for f in range(n_feat)) for k in range(W.shape[1])]  # m x (B, I)
    if kind == "hidden_relu":
        hs = [torch.relu(h) for h in hs]
    total = 0.0
    for f in range(n_feat):
        out = sum(h * W[:, k, f] for k, h in enumerate(hs)) + b[:, f]  # (B, I)
        out = out if kind == "linear" else torch.relu(out)
        total = total + importance[:, f] * ((xs[f] - out) ** 2).mean(0)  # (I,)
    return total / n_feat


# --- modules ------------------------------------------------------------------------------------------------------


class _Instances(HookedModule):
    """Holds the per-instance importance and feature probability as buffers (I, F)."""

    def _init_buffers(self, n_instances: int, n_features: int) -> None:
        self.register_buffer("importance", torch.ones(n_instances, n_features))  # (I, F)
        self.register_buffer("feature_prob", torch.ones(n_instances, n_features))  # (I, F)

    def set_data(self, importance: Tensor | float, feature_prob: Tensor | float) -> None:
        """Broadcast importance and feature probability (1 - S) to (I, F) and store them."""
        self.importance.copy_(torch.as_tensor(importance, dtype=torch.float32).expand_as(self.importance))
        self.feature_prob.copy_(torch.as_tensor(feature_prob, dtype=torch.float32).expand_as(self.feature_prob))


class ToyModel(_Instances):
    """I independent tied-weight toy models (Section 2, 7): x' = act(W^T act_h(W x) + b). x (B, I, F) -> (B, I, F).

    Hook points (`run_with_cache`, `run_with_hooks`; every activation keeps the instance axis I):
        hook_hidden    (B, I, m)  h = W x (ReLU(W x) for kind "hidden_relu")
        hook_out       (B, I, F)  x' = act(W^T h + b)
    `loss` on tiny models (m * n <= TINY) takes the fast path, which does not call `forward`, so no hook fires there.
    """

    def __init__(self, cfg: ToyConfig, generator: torch.Generator | None = None):
        super().__init__()
        self.cfg = cfg
        self.W = nn.Parameter(xavier_normal_instances(cfg.n_instances, (cfg.d_hidden, cfg.n_features), generator))
        self.b = nn.Parameter(torch.zeros(cfg.n_instances, cfg.n_features))  # (I, F)
        self._init_buffers(cfg.n_instances, cfg.n_features)
        self.hook_hidden, self.hook_out = HookPoint(), HookPoint()

    def hidden(self, x: Tensor) -> Tensor:
        """h = act_h(W x): x (B, I, F) -> (B, I, m)."""
        return toy_hidden(self.W, x, self.cfg.kind)

    def forward(self, x: Tensor) -> Tensor:
        h = self.hook_hidden(toy_hidden(self.W, x, self.cfg.kind))  # (B, I, m)
        return self.hook_out(toy_readout(self.W, self.b, h, self.cfg.kind))  # (B, I, F)

    def loss(self, x: Tensor) -> Tensor:
        """Per-instance importance-weighted reconstruction loss (I,); tiny models take the fast path."""
        if self.cfg.d_hidden * self.cfg.n_features <= TINY:
            return toy_loss_tiny(self.W, self.b, x, self.importance, self.cfg.kind)
        return importance_weighted_mse(self(x), x, self.importance)

    def sample(self, n_batch: int, gen: torch.Generator) -> Tensor:
        return sample_features(n_batch, self.feature_prob, gen)  # (B, I, F)


class AbsModel(_Instances):
    """Section 8: y' = ReLU(W_2 ReLU(W_1 x) + b) trained on y = |x|, x in U[-1, 1]. x (B, I, F) -> (B, I, F).

    Hook points (`run_with_cache`, `run_with_hooks`; every activation keeps the instance axis I):
        hook_hidden    (B, I, H)  ReLU(W_1 x), the hidden neurons
        hook_out       (B, I, F)  y' = ReLU(W_2 h + b)
    """

    def __init__(self, cfg: AbsConfig, generator: torch.Generator | None = None):
        super().__init__()
        self.cfg = cfg
        shape = (cfg.d_hidden, cfg.n_features)
        self.W_in = nn.Parameter(xavier_normal_instances(cfg.n_instances, shape, generator))  # (I, H, F)
        self.W_out = nn.Parameter(xavier_normal_instances(cfg.n_instances, shape[::-1], generator))  # (I, F, H)
        self.b = nn.Parameter(torch.zeros(cfg.n_instances, cfg.n_features))  # (I, F)
        self._init_buffers(cfg.n_instances, cfg.n_features)
        self.hook_hidden, self.hook_out = HookPoint(), HookPoint()

    def hidden(self, x: Tensor) -> Tensor:
        return torch.relu(torch.einsum("ihf,bif->bih", self.W_in, x))  # (B, I, H)

    def forward(self, x: Tensor) -> Tensor:
        h = self.hook_hidden(self.hidden(x))  # (B, I, H)
        return self.hook_out(torch.relu(torch.einsum("ifh,bih->bif", self.W_out, h) + self.b))  # (B, I, F)

    def loss(self, x: Tensor) -> Tensor:
        """Per-instance importance-weighted MSE against |x| (I,)."""
        return importance_weighted_mse(self(x), x.abs(), self.importance)

    def sample(self, n_batch: int, gen: torch.Generator) -> Tensor:
        return sample_features(n_batch, self.feature_prob, gen, signed=True)  # (B, I, F)

"""Dropout as the paper defines it: retention probability p, weight scaling at test time, max-norm, MC averaging.

Srivastava, Hinton, Krizhevsky, Sutskever & Salakhutdinov 2014, "Dropout: A Simple Way to Prevent Neural Networks
from Overfitting", JMLR 15:1929-1958: Section 4 (Eq. for the thinned net: r ~ Bernoulli(p), y~ = r * y), Section 4
and Fig 2 (at test time the outgoing weights are scaled, W_test = p W), Section 5.1 / App. A.3 (max-norm: ||w|| <= c
for each hidden unit's incoming weights), Section 7.5 (Monte-Carlo model averaging over k thinned nets, Fig 11).

Glossary (code name -> paper symbol):
    p_keep          p, the probability of *retaining* a unit (torch's nn.Dropout p is the drop probability 1 - p)
    mask            r^(l), the Bernoulli(p) vector of layer l
    max_norm        c, the bound on ||w|| of each unit's incoming weight vector (one row of an nn.Linear weight)
    weight scaling  the deterministic test-time net: each layer's input is multiplied by p (= W scaled by p)

Mirrors: `torch.nn.Dropout` uses the inverted convention (train: r * y / p, test: identity); the two give identical
test outputs once the weights are converted (tests/dropout/test_model.py). `max_norm_` agrees with
`torch.renorm(W, 2, 0, c)`, which divides by (norm + 1e-7).

Deviations:
    - Weight scaling is applied to the layer's *input* (y * p) rather than by rewriting W; for a linear layer
      W (p y) + b = (p W) y + b, the paper's rule exactly, and the trained weights stay untouched.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from mlreads.core.nn.hooks import HookedModule, HookPoint

Mode = Literal["train", "scale", "mc"]


def dropout_mask(shape: torch.Size | Sequence[int], p_keep: float, generator: torch.Generator | None = None,
                 dtype=torch.float32) -> Tensor:  # fmt: skip
    """Section 4: r ~ Bernoulli(p), one draw per unit."""
    return torch.bernoulli(torch.full(tuple(shape), p_keep, dtype=dtype), generator=generator)


def paper_dropout(y: Tensor, p_keep: float, mode: Mode, generator: torch.Generator | None = None) -> Tensor:
    """Section 4: y~ = r * y while training (and for each MC sample); y * p at test time (weight scaling)."""
    if p_keep >= 1.0:
        return y
    if mode == "scale":
        return y * p_keep
    return y * dropout_mask(y.shape, p_keep, generator, y.dtype)


@torch.no_grad()
def max_norm_(weight: Tensor, c: float) -> Tensor:
    """Section 5.1: project each row w (a unit's incoming weights) onto ||w||_2 <= c, in place."""
    norms = weight.norm(dim=1, keepdim=True)  # (out, 1)
    return weight.mul_(torch.clamp(c / norms.clamp_min(1e-12), max=1.0))


@dataclass(frozen=True)
class MLPConfig:
    d_in: int = 784
    d_hidden: tuple[int, ...] = (512, 512)
    d_out: int = 10
    p_keep_input: float = 1.0  # the paper's MNIST nets: 0.8
    p_keep_hidden: float = 1.0  # the paper's MNIST nets: 0.5
    max_norm: float | None = None  # c; None: no constraint


class DropoutMLP(HookedModule):
    """A ReLU MLP with paper dropout on its input and on every hidden layer (Section 6.1.1's MNIST nets).

    `forward(x, mode=None, generator=None)`: mode "train" samples masks (the default in train mode), "scale" is the
    weight-scaled test net (the default in eval mode), "mc" samples masks in eval mode (one thinned net per call).

    Hook points (`run_with_cache`, `run_with_hooks`; `hook_aliases` publishes the ModuleLists hook_post.{i} /
    hook_dropped.{i} under the layer they follow):
        hook_in                 (B, d_in)         the input after its dropout (r * x, or p * x when scaling)
        layers.{i}.hook_post    (B, d_hidden[i])  y = ReLU(layers[i](.)), before dropout (what `run` returns)
        layers.{i}.hook_dropped (B, d_hidden[i])  y~ = r * y (p * y when scaling), what layers[i + 1] sees
        hook_logits             (B, d_out)
    """

    hook_aliases = ((r"^hook_(post|dropped)\.(\d+)$", r"layers.\2.hook_\1"),)

    def __init__(self, cfg: MLPConfig):
        super().__init__()
        self.cfg = cfg
        sizes = (cfg.d_in, *cfg.d_hidden, cfg.d_out)
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in itertools.pairwise(sizes))
        self.hook_in, self.hook_logits = HookPoint(), HookPoint()
        self.hook_post = nn.ModuleList(HookPoint() for _ in cfg.d_hidden)
        self.hook_dropped = nn.ModuleList(HookPoint() for _ in cfg.d_hidden)

    def run(self, x: Tensor, mode: Mode | None = None, generator: torch.Generator | None = None
            ) -> tuple[Tensor, list[Tensor]]:  # fmt: skip
        """(logits (B, d_out), the ReLU activations of every hidden layer before their dropout)."""
        mode = mode or ("train" if self.training else "scale")
        acts = []
        h = self.hook_in(paper_dropout(x, self.cfg.p_keep_input, mode, generator))  # (B, d_in)
        for layer, post, dropped in zip(self.layers[:-1], self.hook_post, self.hook_dropped, strict=True):
            a = post(F.relu(layer(h)))  # (B, d_hidden)
            acts.append(a)
            h = dropped(paper_dropout(a, self.cfg.p_keep_hidden, mode, generator))
        return self.hook_logits(self.layers[-1](h)), acts  # (B, d_out)

    def forward(self, x: Tensor, mode: Mode | None = None, generator: torch.Generator | None = None) -> Tensor:
        return self.run(x, mode, generator)[0]

    @torch.no_grad()
    def apply_max_norm(self) -> None:
        """Project every layer's incoming weights onto ||w|| <= c (after each update, Section 5.1)."""
        if self.cfg.max_norm is not None:
            for layer in self.layers:
                max_norm_(layer.weight, self.cfg.max_norm)


@torch.no_grad()
def mc_average(model: DropoutMLP, x: Tensor, k: int, generator: torch.Generator) -> Tensor:
    """Section 7.5: the mean of the softmax outputs of k thinned nets, each with fresh masks. Returns probs (B, V)."""
    probs = torch.zeros(x.shape[0], model.cfg.d_out)
    for _ in range(k):
        probs += F.softmax(model(x, mode="mc", generator=generator), dim=-1)
    return probs / k


@dataclass(frozen=True)
class AutoencoderConfig:
    """`Autoencoder`'s sizes (its constructor's arguments), kept as `model.cfg` so a saved run can rebuild it."""

    d_in: int = 784
    d_hidden: int = 256
    p_keep: float = 1.0


class Autoencoder(HookedModule):
    """Section 7.2's autoencoder: x -> ReLU(W1 x + b1) (d_hidden units, dropout with retention p) -> W2 h + b2.

    Hook points (`run_with_cache`, `run_with_hooks`):
        hook_code       (B, d_hidden)  h = ReLU(W1 x + b1), the features of Fig 8 (also fires in `code`)
        hook_dropped    (B, d_hidden)  r * h (p * h when scaling)
        hook_out        (B, d_in)      the reconstruction
    """

    def __init__(self, d_in: int = 784, d_hidden: int = 256, p_keep: float = 1.0):
        super().__init__()
        self.cfg = AutoencoderConfig(d_in, d_hidden, p_keep)
        self.p_keep = p_keep
        self.enc = nn.Linear(d_in, d_hidden)
        self.dec = nn.Linear(d_hidden, d_in)
        self.hook_code, self.hook_dropped, self.hook_out = HookPoint(), HookPoint(), HookPoint()

    def code(self, x: Tensor) -> Tensor:
        return self.hook_code(F.relu(self.enc(x)))  # (B, d_hidden)

    def forward(self, x: Tensor, mode: Mode | None = None) -> Tensor:
        mode = mode or ("train" if self.training else "scale")
        return self.hook_out(self.dec(self.hook_dropped(paper_dropout(self.code(x), self.p_keep, mode))))  # (B, d_in)

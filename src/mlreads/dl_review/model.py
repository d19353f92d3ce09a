"""The small nets of the Deep Learning review: the 2-2-1 net of Fig 1a, its backprop (Fig 1c-d), and many
one-hidden-layer MLPs trained at once (the local-minima claim of p. 438).

LeCun, Bengio & Hinton 2015, "Deep learning", Nature 521:436-444. Fig 1a: "A multi-layer neural network (shown by
the connected dots) can distort the input space to make the classes of data ... linearly separable ... an
illustrative example with only two input units, two hidden units and one output unit". Fig 1c-d: the forward pass
z_j = sum_i w_ij x_i, y_j = f(z_j), and the backward pass dE/dy_l = y_l - t_l, dE/dz_l = dE/dy_l f'(z_l),
dE/dy_k = sum_l w_kl dE/dz_l, dE/dz_k = dE/dy_k f'(z_k), dE/dw_kl = y_k dE/dz_l.
p. 438: "poor local minima are rarely a problem with large networks ... the system nearly always reaches
solutions of very similar quality" (citing Dauphin et al. 2014 and Choromanska et al. 2015).

Glossary (code name -> paper symbol):
    W1 (S, 2, 2), b1     w_ij, the input -> hidden weights of Fig 1 (one per student net s)
    v (S, 2), c          w_kl, the hidden -> output weights
    hidden               y_j = tanh(z_j), the warped coordinates of Fig 1a's middle panel

Deviations:
    - Fig 1c-d writes E = 1/2 sum (y_l - t_l)^2 without biases; `backprop_fig1` adds biases (their gradients are
      dE/dz) and keeps the squared error; the classifiers train on the logistic loss instead.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from mlreads.core.nn.hooks import HookedModule, HookPoint


def teacher_logit(x: Tensor, width: float = 0.6, tilt: float = 0.35, sharpness: float = 4.0) -> Tensor:
    """A 2-2-1 tanh net whose positive class is a bent band: tanh(a(u2.x + w)) - tanh(a(u1.x - w)) - 1 > 0, with
    u1, u2 two unit directions `tilt` radians apart. Realisable by a 2-2-1 student; not by a line (a band has two
    edges). x (N, 2) -> (N,)."""
    u1 = torch.tensor([np.cos(tilt), np.sin(tilt)], dtype=x.dtype)
    u2 = torch.tensor([np.cos(-tilt), np.sin(-tilt)], dtype=x.dtype)
    return torch.tanh(sharpness * (x @ u2 + width)) - torch.tanh(sharpness * (x @ u1 - width)) - 1.0


@dataclass(frozen=True)
class StudentsConfig:
    """`Students`' sizes (its constructor's arguments), kept as `model.cfg` so a saved run can rebuild it."""

    n_seeds: int  # S
    d_hidden: int = 2
    scale: float = 1.0  # the init's standard deviation


class Students(HookedModule):
    """S independent 2-2-1 tanh nets evaluated on the same inputs. forward(x (N, 2)) -> logits (S, N).

    Hook points (`run_with_cache`, `run_with_hooks`; every activation keeps the student axis S):
        hook_hidden     (S, N, H)  y_j = tanh(z_j), Fig 1a's warped coordinates (what `hidden` returns)
        hook_logits     (S, N)
    """

    def __init__(self, n_seeds: int, d_hidden: int = 2, scale: float = 1.0):
        super().__init__()
        self.cfg = StudentsConfig(n_seeds, d_hidden, scale)
        self.W1 = nn.Parameter(torch.randn(n_seeds, 2, d_hidden) * scale)
        self.b1 = nn.Parameter(torch.randn(n_seeds, d_hidden) * scale)
        self.v = nn.Parameter(torch.randn(n_seeds, d_hidden) * scale)
        self.c = nn.Parameter(torch.zeros(n_seeds))
        self.hook_hidden, self.hook_logits = HookPoint(), HookPoint()

    def hidden(self, x: Tensor) -> Tensor:
        return torch.tanh(torch.einsum("nd,sdh->snh", x, self.W1) + self.b1[:, None])  # (S, N, H)

    def forward(self, x: Tensor) -> Tensor:
        h = self.hook_hidden(self.hidden(x))  # (S, N, H)
        return self.hook_logits(torch.einsum("snh,sh->sn", h, self.v) + self.c[:, None])  # (S, N)


@dataclass(frozen=True)
class ManyMLPsConfig:
    """`ManyMLPs`' sizes (its constructor's arguments), kept as `model.cfg` so a saved run can rebuild it."""

    n_seeds: int  # S
    d_in: int
    width: int
    d_out: int


class ManyMLPs(HookedModule):
    """S one-hidden-layer ReLU MLPs d_in -> width -> d_out, trained as one batched model (bmm).

    forward(x (N, d_in)) -> logits (S, N, d_out). PyTorch's nn.Linear init per net (uniform +-1/sqrt(fan_in)).

    Hook points (`run_with_cache`, `run_with_hooks`; every activation keeps the net axis S):
        hook_hidden     (S, N, width)  ReLU(x W1 + b1)
        hook_logits     (S, N, d_out)
    """

    def __init__(self, n_seeds: int, d_in: int, width: int, d_out: int):
        super().__init__()
        self.cfg = ManyMLPsConfig(n_seeds, d_in, width, d_out)
        k1, k2 = d_in**-0.5, width**-0.5
        self.W1 = nn.Parameter((torch.rand(n_seeds, d_in, width) * 2 - 1) * k1)
        self.b1 = nn.Parameter((torch.rand(n_seeds, 1, width) * 2 - 1) * k1)
        self.W2 = nn.Parameter((torch.rand(n_seeds, width, d_out) * 2 - 1) * k2)
        self.b2 = nn.Parameter((torch.rand(n_seeds, 1, d_out) * 2 - 1) * k2)
        self.hook_hidden, self.hook_logits = HookPoint(), HookPoint()

    def forward(self, x: Tensor) -> Tensor:
        h = self.hook_hidden(F.relu(torch.matmul(x, self.W1) + self.b1))  # (S, N, width)
        return self.hook_logits(torch.matmul(h, self.W2) + self.b2)  # (S, N, d_out)


def per_seed_cross_entropy(logits: Tensor, y: Tensor) -> Tensor:
    """Mean cross-entropy of each net: logits (S, N, V), y (N,) -> (S,)."""
    S, N, V = logits.shape
    return F.cross_entropy(logits.reshape(S * N, V), y.repeat(S), reduction="none").reshape(S, N).mean(1)


def backprop_fig1(x: np.ndarray, t: np.ndarray, weights: list[tuple[np.ndarray, np.ndarray]]) -> list:
    """Fig 1c-d in numpy: forward z = W^T y + b, y = tanh(z) (the output layer linear), E = 1/2 sum (y - t)^2
    summed over the batch; returns [(dE/dW, dE/db)] per layer. x (N, d_in), t (N, d_out)."""
    ys, zs = [x], []
    for i, (W, b) in enumerate(weights):
        z = ys[-1] @ W + b  # z_j = sum_i w_ij x_i (+ b_j)
        zs.append(z)
        ys.append(z if i == len(weights) - 1 else np.tanh(z))
    dE_dy = ys[-1] - t  # dE/dy_l = y_l - t_l
    grads = []
    for i in range(len(weights) - 1, -1, -1):
        fprime = np.ones_like(zs[i]) if i == len(weights) - 1 else 1 - np.tanh(zs[i]) ** 2
        dE_dz = dE_dy * fprime  # dE/dz_l = dE/dy_l f'(z_l)
        grads.append((ys[i].T @ dE_dz, dE_dz.sum(0)))  # dE/dw_kl = y_k dE/dz_l
        dE_dy = dE_dz @ weights[i][0].T  # dE/dy_k = sum_l w_kl dE/dz_l
    return grads[::-1]

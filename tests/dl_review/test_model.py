"""Fig 1c-d's backprop equations (numpy) equal torch.autograd; batched nets are independent nets."""

import itertools

import numpy as np
import torch
from torch import nn

from mlreads.dl_review import (
    ManyMLPs,
    Students,
    backprop_fig1,
    per_seed_cross_entropy,
    teacher_logit,
)


def test_fig1_backprop_equals_autograd_in_float64():
    g = torch.Generator().manual_seed(0)
    sizes = [3, 5, 4, 2]
    weights = [(torch.randn(a, b, generator=g, dtype=torch.float64, requires_grad=True),
                torch.randn(b, generator=g, dtype=torch.float64, requires_grad=True))
               for a, b in itertools.pairwise(sizes)]  # fmt: skip
    x = torch.randn(7, 3, generator=g, dtype=torch.float64)
    t = torch.randn(7, 2, generator=g, dtype=torch.float64)
    h = x
    for i, (W, b) in enumerate(weights):
        h = h @ W + b
        if i < len(weights) - 1:
            h = torch.tanh(h)
    (0.5 * (h - t).pow(2).sum()).backward()
    ours = backprop_fig1(x.numpy(), t.numpy(), [(W.detach().numpy(), b.detach().numpy()) for W, b in weights])
    for (dW, db), (W, b) in zip(ours, weights, strict=True):
        np.testing.assert_allclose(dW, W.grad.numpy(), rtol=0, atol=1e-12)
        np.testing.assert_allclose(db, b.grad.numpy(), rtol=0, atol=1e-12)


def test_many_mlps_equal_separate_mlps_and_get_their_own_gradients():
    torch.manual_seed(0)
    nets = ManyMLPs(3, 6, 5, 4)
    x = torch.randn(8, 6)
    y = torch.randint(4, (8,))
    loss = per_seed_cross_entropy(nets(x), y)
    for s in range(3):
        lin1, lin2 = nn.Linear(6, 5), nn.Linear(5, 4)
        with torch.no_grad():
            lin1.weight.copy_(nets.W1[s].T), lin1.bias.copy_(nets.b1[s, 0])
            lin2.weight.copy_(nets.W2[s].T), lin2.bias.copy_(nets.b2[s, 0])
        ref = nn.functional.cross_entropy(lin2(torch.relu(lin1(x))), y)
        torch.testing.assert_close(loss[s], ref, rtol=1e-6, atol=1e-6)
    loss[1].backward()
    assert nets.W1.grad[0].abs().sum() == 0 and nets.W1.grad[2].abs().sum() == 0 and nets.W1.grad[1].abs().sum() > 0


def test_teacher_band_is_realisable_by_a_student():
    """The teacher is itself a 2-2-1 tanh net: a Students instance with its weights reproduces it exactly."""
    s = Students(1)
    a, w, tilt = 4.0, 0.6, 0.35
    u1 = torch.tensor([np.cos(tilt), np.sin(tilt)])
    u2 = torch.tensor([np.cos(-tilt), np.sin(-tilt)])
    with torch.no_grad():
        s.W1[0] = torch.stack([a * u2, a * u1], 1).float()
        s.b1[0] = torch.tensor([a * w, -a * w])
        s.v[0] = torch.tensor([1.0, -1.0])
        s.c[0] = -1.0
    x = torch.rand(100, 2) * 4 - 2
    torch.testing.assert_close(s(x)[0], teacher_logit(x), rtol=1e-5, atol=1e-5)

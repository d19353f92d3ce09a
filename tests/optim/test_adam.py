"""Adam / AdamW: bit-identical to torch.optim step for step; Algorithm 1 twin; the eps-hat and no-correction modes."""

import copy
import math

import pytest
import torch
from torch import nn

from mlreads.optim import Adam, first_step_size
from mlreads.optim.reference import adam_ref


def _mlp(dtype):
    g = torch.Generator().manual_seed(0)
    model = nn.Sequential(nn.Linear(5, 8), nn.Tanh(), nn.Linear(8, 3)).to(dtype)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=g, dtype=dtype) * 0.5)
    return model


def _trajectories(dtype, ours_kw, torch_cls, torch_kw, steps=100):
    """Train two copies of one MLP on the same batches, ours and torch's; yield the parameters after each step."""
    a = _mlp(dtype)
    b = copy.deepcopy(a)
    opt_a = Adam(a.parameters(), **ours_kw)
    opt_b = torch_cls(b.parameters(), foreach=False, **torch_kw)
    g = torch.Generator().manual_seed(1)
    for _ in range(steps):
        x = torch.randn(16, 5, generator=g, dtype=dtype)
        y = torch.randn(16, 3, generator=g, dtype=dtype)
        for model, opt in ((a, opt_a), (b, opt_b)):
            opt.zero_grad()
            (model(x) - y).pow(2).mean().backward()
            opt.step()
        yield list(a.parameters()), list(b.parameters())


CASES = [
    ({}, torch.optim.Adam, {}),
    ({"lr": 3e-2, "betas": (0.8, 0.99), "eps": 1e-6}, torch.optim.Adam, {"lr": 3e-2, "betas": (0.8, 0.99), "eps": 1e-6}),
    ({"lr": 1e-2, "weight_decay": 0.1}, torch.optim.Adam, {"lr": 1e-2, "weight_decay": 0.1}),
    ({"lr": 1e-2, "weight_decay": 0.1, "decoupled": True}, torch.optim.AdamW, {"lr": 1e-2, "weight_decay": 0.1}),
    ({"lr": 1e-2, "amsgrad": True}, torch.optim.Adam, {"lr": 1e-2, "amsgrad": True}),
]


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("ours_kw,torch_cls,torch_kw", CASES)
def test_adam_is_bit_identical_to_torch_for_100_steps(dtype, ours_kw, torch_cls, torch_kw):
    for ours, theirs in _trajectories(dtype, ours_kw, torch_cls, torch_kw):
        for p, q in zip(ours, theirs, strict=True):
            assert torch.equal(p, q), (p - q).abs().max()


@pytest.mark.parametrize("bias_correction", [True, False])
@pytest.mark.parametrize("wd,decoupled", [(0.0, False), (0.05, False), (0.05, True)])
def test_adam_matches_algorithm_1_twin(bias_correction, wd, decoupled):
    g = torch.Generator().manual_seed(2)
    theta0 = torch.randn(50, generator=g, dtype=torch.float64)
    grads = [torch.randn(50, generator=g, dtype=torch.float64) * 10 ** (t % 3 - 1) for t in range(60)]
    kw = {"lr": 1e-2, "betas": (0.9, 0.999), "eps": 1e-8, "weight_decay": wd}
    ref = adam_ref(theta0, grads, beta1=0.9, beta2=0.999, bias_correction=bias_correction, decoupled=decoupled,
                   **{k: v for k, v in kw.items() if k != "betas"})
    p = nn.Parameter(theta0.clone())
    opt = Adam([p], bias_correction=bias_correction, decoupled=decoupled, **kw)
    for gt, want in zip(grads, ref, strict=True):
        p.grad = gt.clone()
        opt.step()
        torch.testing.assert_close(p.detach(), want, rtol=0, atol=1e-12)


def test_eps_hat_mode_is_the_section_2_closed_form():
    # One step from m = v = 0: alpha_1 = alpha sqrt(1 - b2) / (1 - b1); theta -= alpha_1 m_1 / (sqrt(v_1) + eps_hat)
    g = torch.tensor([1e-3, -2.0, 5e-9], dtype=torch.float64)
    p = nn.Parameter(torch.zeros(3, dtype=torch.float64))
    lr, b1, b2, eps = 1e-2, 0.9, 0.999, 1e-8
    Adam([p], lr=lr, betas=(b1, b2), eps=eps, eps_mode="hat")
    opt = Adam([p], lr=lr, betas=(b1, b2), eps=eps, eps_mode="hat")
    p.grad = g
    opt.step()
    m, v = (1 - b1) * g, (1 - b2) * g * g
    want = -lr * math.sqrt(1 - b2) / (1 - b1) * m / (v.sqrt() + eps)
    torch.testing.assert_close(p.detach(), want, rtol=1e-15, atol=0)
    # it differs from Algorithm 1's eps placement exactly where |g| is near eps
    q = nn.Parameter(torch.zeros(3, dtype=torch.float64))
    opt_q = Adam([q], lr=lr, betas=(b1, b2), eps=eps)
    q.grad = g
    opt_q.step()
    d = (q - p).detach().abs()
    assert d[2] > 1e-4 and d[1] < 1e-7


@pytest.mark.parametrize("b2", [0.99, 0.999, 0.9999])
def test_first_step_without_correction_is_alpha_1_minus_b1_over_sqrt_1_minus_b2(b2):
    p = nn.Parameter(torch.zeros(1, dtype=torch.float64))
    opt = Adam([p], lr=1e-3, betas=(0.9, b2), bias_correction=False)
    p.grad = torch.tensor([3.0], dtype=torch.float64)
    opt.step()
    assert -p.item() == pytest.approx(first_step_size(1e-3, 0.9, b2, False), rel=1e-6)
    assert first_step_size(1e-3, 0.9, 0.9999, False) == pytest.approx(1e-2)  # the paper's "10 alpha"
    q = nn.Parameter(torch.zeros(1, dtype=torch.float64))
    opt = Adam([q], lr=1e-3, betas=(0.9, b2))
    q.grad = torch.tensor([3.0], dtype=torch.float64)
    opt.step()
    assert -q.item() == pytest.approx(1e-3, rel=1e-6)

"""SophiaG: bit-identical to the official sophia.py (PyPI sophia-opt) step for step, with the same gradients and the
same Hessian estimates; the Algorithm 1 twin; the GNB estimator's expectation."""

import copy

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from mlreads.optim import SophiaG, gnb_loss, sophia_hessian_hook
from mlreads.optim.reference import sophia_ref


def _model(dtype=torch.float32):
    g = torch.Generator().manual_seed(0)
    model = nn.Sequential(nn.Embedding(11, 8), nn.Linear(8, 16), nn.GELU(), nn.Linear(16, 11)).to(dtype)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=g, dtype=dtype) * 0.3)
    return model


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_sophia_is_bit_identical_to_official_sophia_opt(dtype):
    sophia_opt = pytest.importorskip("sophia_opt")
    a = _model(dtype)
    b = copy.deepcopy(a)
    kw = {"lr": 3e-3, "betas": (0.965, 0.99), "rho": 0.04, "weight_decay": 0.1}
    bs, k = 6 * 5, 3
    ours = SophiaG(a.parameters(), bs=bs, **kw)
    theirs = sophia_opt.SophiaG(b.parameters(), **kw)
    g = torch.Generator().manual_seed(1)
    win = []
    for t in range(1, 61):
        x = torch.randint(11, (6, 5), generator=g)
        y = torch.randint(11, (6, 5), generator=g)
        for model, opt in ((a, ours), (b, theirs)):
            opt.zero_grad()
            F.cross_entropy(model(x).reshape(-1, 11), y.reshape(-1)).backward()
            opt.step() if opt is ours else opt.step(bs=bs)
        win.append(ours.last_win_rate)
        if t % k == 0:  # the same sampled labels for both
            seed = 1000 + t
            for model, opt in ((a, ours), (b, theirs)):
                opt.zero_grad()
                gnb_loss(model(x), torch.Generator().manual_seed(seed)).backward()
                opt.update_hessian()
        for p, q in zip(a.parameters(), b.parameters(), strict=True):
            assert torch.equal(p, q), (t, (p - q).abs().max())
    assert all(w == 0.0 for w in win[:k])  # h = 0: every coordinate clipped, sign steps
    assert 0 < max(win[k:]) < 1


def test_sophia_matches_algorithm_1_twin():
    g = torch.Generator().manual_seed(3)
    theta0 = torch.randn(40, generator=g, dtype=torch.float64)
    grads = [torch.randn(40, generator=g, dtype=torch.float64) * 0.01 for _ in range(50)]
    hess = {t: torch.randn(40, generator=g, dtype=torch.float64) * 0.01 for t in range(5, 51, 5)}
    kw = {"lr": 1e-2, "rho": 0.05, "weight_decay": 0.2, "bs": 64}
    ref = sophia_ref(theta0, grads, hess, beta1=0.965, beta2=0.99, **kw)
    p = nn.Parameter(theta0.clone())
    opt = SophiaG([p], betas=(0.965, 0.99), **kw)
    for t, (gt, want) in enumerate(zip(grads, ref, strict=True), start=1):
        p.grad = gt.clone()
        opt.step()
        torch.testing.assert_close(p.detach(), want, rtol=0, atol=1e-14)
        if t in hess:
            p.grad = hess[t].clone()
            opt.update_hessian()


def test_gnb_estimate_is_unbiased_for_the_gauss_newton_diagonal():
    """E[g_hat^2] over sampled labels equals diag(J^T (diag(p) - p p^T) J) for one example (Section 2.3)."""
    torch.manual_seed(0)
    w = nn.Parameter(torch.randn(4, 3, dtype=torch.float64))
    x = torch.randn(3, dtype=torch.float64)
    probs = F.softmax(w @ x, -1)
    gn = torch.outer(probs - probs**2, x**2)  # diag of the GN matrix of CE for logits = W x
    gen = torch.Generator().manual_seed(5)
    est = torch.zeros_like(w)
    n = 20000
    for _ in range(n):
        w.grad = None
        gnb_loss((w @ x)[None], gen).backward()
        est += w.grad**2
    torch.testing.assert_close(est / n, gn, rtol=0.05, atol=2e-3)


def test_hessian_hook_refreshes_every_k_steps_with_reproducible_labels():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Embedding(7, 4), nn.Linear(4, 7))
    opt = SophiaG(model.parameters(), lr=1e-2, bs=8)
    hook = sophia_hessian_hook(every=2, seed=9)
    x = torch.randint(7, (2, 4))
    for done in (1, 2):
        opt.zero_grad()
        model(x).sum().backward()
        opt.step()
        hook(done, model, opt, (x, x))
        h = opt.state[model[1].weight]["hessian"]
        assert (h.abs().sum() > 0) == (done == 2)
        assert all(p.grad is None for p in model.parameters()) == (done == 2)  # the hook cleans up its grads


def test_hessian_hook_clips_the_sampled_label_gradient():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Embedding(7, 4), nn.Linear(4, 7))
    x = torch.randint(7, (2, 4))
    hs = {}
    for clip in (None, 1e-3):
        opt = SophiaG(model.parameters(), lr=1e-2, bs=8, betas=(0.9, 0.0))  # beta2 = 0: h is the last estimate
        sophia_hessian_hook(every=1, seed=3, grad_clip=clip)(1, model, opt, (x, x))
        hs[clip] = torch.cat([opt.state[p]["hessian"].flatten() for p in model.parameters()])
    # clipping the gradient to norm 1e-3 scales every squared coordinate by the same (tiny) factor
    assert float(hs[1e-3].sum()) < 1e-5 < float(hs[None].sum())
    ratio = hs[1e-3][hs[None] > 0] / hs[None][hs[None] > 0]
    torch.testing.assert_close(ratio, torch.full_like(ratio, float(ratio[0])), rtol=1e-3, atol=0)

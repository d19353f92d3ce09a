"""Convolution (FFT, padded to 2L) equals the direct sum and the recurrence; layers and the classifier give the same
features in CNN mode and RNN mode; causality; the SSM parameters and their optimiser group; the log Δ guard; init
from a generator."""

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.testing import assert_close

from mlreads.core.run.seeding import init_rng
from mlreads.core.train import param_groups
from mlreads.s4.kernels import StepForm, fft_conv
from mlreads.s4.model import S4Config, SequenceClassifier
from mlreads.s4.reference import causal_conv_ref, kernel_naive, recurrence_ref

F32 = dict(rtol=1e-3, atol=1e-4)  # documented float32/complex64 tolerance (model.py docstring)


def _model(cfg: S4Config, seed: int = 0) -> SequenceClassifier:
    return SequenceClassifier(cfg, torch.Generator().manual_seed(seed))


@settings(max_examples=15, deadline=None)
@given(b=st.integers(1, 3), h=st.integers(1, 4), length=st.integers(1, 40))
def test_fft_conv_equals_direct_sum(b, h, length):
    g = torch.Generator().manual_seed(b * 100 + h * 10 + length)
    u = torch.randn(b, h, length, generator=g, dtype=torch.float64)
    k = torch.randn(h, length, generator=g, dtype=torch.float64)
    d = torch.randn(h, generator=g, dtype=torch.float64)
    assert_close(fft_conv(u, k, d), causal_conv_ref(u, k, d), rtol=1e-10, atol=1e-10)


def test_fft_conv_gradients_equal_direct_sum():
    g = torch.Generator().manual_seed(0)
    u = torch.randn(2, 3, 17, generator=g, dtype=torch.float64, requires_grad=True)
    k = torch.randn(3, 17, generator=g, dtype=torch.float64, requires_grad=True)
    w = torch.randn(2, 3, 17, generator=g, dtype=torch.float64)
    g1 = torch.autograd.grad((fft_conv(u, k) * w).sum(), (u, k))
    g2 = torch.autograd.grad((causal_conv_ref(u, k) * w).sum(), (u, k))
    for x, y in zip(g1, g2):
        assert_close(x, y, rtol=1e-10, atol=1e-10)


KINDS = [
    dict(kernel="s4d", init="lin", disc="zoh"),
    dict(kernel="s4d", init="inv", disc="bilinear"),
    dict(kernel="s4d", init="legs", disc="zoh"),
    dict(kernel="s4", disc="bilinear"),
    dict(kernel="dense", a_init="legs", disc="bilinear"),
    dict(kernel="dense", a_init="random", disc="zoh", trainable_a=True),
]


@pytest.mark.parametrize("kw", KINDS, ids=lambda kw: "-".join(str(v) for v in kw.values()))
def test_kernel_convolution_equals_recurrence(kw):
    cfg = S4Config(d_model=4, d_state=8, n_layers=1, **kw)
    model = _model(cfg)
    kernel = model.blocks[0].kernel
    length = 60
    u = torch.randn(2, 4, length, generator=torch.Generator().manual_seed(1))  # (B, H, L)
    with torch.no_grad():
        y_conv = fft_conv(u, kernel(length))
        form = kernel.step_form(length)
        assert isinstance(form, StepForm) and form.diagonal == (kw["kernel"] == "s4d")
        y_rec = recurrence_ref(form.a_bar, form.b_bar, form.c, u.to(form.b_bar.dtype), scale=form.scale)
    assert_close(y_conv, y_rec.float(), **F32)


@pytest.mark.parametrize("kw", KINDS[:1] + KINDS[3:5], ids=lambda kw: kw["kernel"])
def test_classifier_cnn_mode_equals_rnn_mode(kw):
    cfg = S4Config(d_model=8, d_state=8, n_layers=2, dropout=0.3, **kw)
    model = _model(cfg).eval()  # eval: dropout is the identity in both modes
    x = torch.rand(3, 50, 1, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        assert_close(model.features(x), model.features_recurrent(x), **F32)


def test_causality_and_dropout_identity_in_eval():
    model = _model(S4Config(d_model=8, d_state=8, n_layers=2, dropout=0.5)).eval()
    x = torch.rand(2, 40, 1, generator=torch.Generator().manual_seed(3))
    x2 = x.clone()
    x2[:, 25] += 1.0
    with torch.no_grad():
        f1, f2 = model.features(x), model.features(x2)
        assert_close(f1[:, :25], f2[:, :25], rtol=1e-5, atol=1e-5)
        assert (f1[:, 25:] - f2[:, 25:]).abs().max() > 1e-3
        assert_close(model(x), model(x), rtol=0, atol=0)
    model.train()
    with torch.no_grad():
        assert (model(x) - model(x)).abs().max() > 0  # dropout is active in train mode


def test_run_with_cache_names():
    model = _model(S4Config(d_model=8, d_state=8, n_layers=2))
    out, cache = model.run_with_cache(torch.rand(2, 10, 1))
    assert out.shape == (2, 10)
    assert {"blocks.0.hook_ssm_out", "blocks.1.hook_ssm_out", "hook_features"} <= set(cache)
    assert_close(cache["hook_features"].mean(1) @ model.decoder.weight.T + model.decoder.bias, out)


@pytest.mark.parametrize("kernel", ["s4d", "s4", "dense"])
def test_ssm_parameters_get_their_own_low_lr_group_without_decay(kernel):
    model = _model(S4Config(d_model=8, d_state=8, n_layers=2, kernel=kernel, trainable_a=True))
    ssm_ids = {id(p) for p in model.ssm_parameters()}
    groups = param_groups(model, 0.05, own_lr=lambda name, p: id(p) in ssm_ids, lr=1e-3)  # as the experiments do
    ids = [id(p) for g in groups for p in g["params"]]
    assert sorted(ids) == sorted(id(p) for p in model.parameters())  # each parameter exactly once
    ssm = next(g for g in groups if "lr" in g)
    assert ssm["lr"] == 1e-3 and ssm["weight_decay"] == 0.0 and {id(p) for p in ssm["params"]} == ssm_ids
    names = {id(p): n for n, p in model.named_parameters()}
    ssm_names = {names[id(p)].split(".")[-1] for p in ssm["params"]}
    assert "log_dt" in ssm_names and "b" in ssm_names and ({"a_log_re", "a_im"} <= ssm_names or "a" in ssm_names)
    assert not any(n.endswith(("c", "c_tilde")) for n in ssm_names)
    decay = next(g for g in groups if g["weight_decay"] > 0)
    assert all(p.ndim >= 2 for p in decay["params"]) and not ssm_ids & {id(p) for p in decay["params"]}


@pytest.mark.parametrize("kernel", ["s4d", "s4", "dense"])
def test_log_dt_guard_keeps_kernel_finite(kernel):
    model = _model(S4Config(d_model=4, d_state=8, n_layers=1, kernel=kernel))
    k = model.blocks[0].kernel
    with torch.no_grad():
        k.log_dt.copy_(torch.tensor([-1e4, 1e4, math.nan, 0.0]).nan_to_num(nan=-50.0))
        out = k(64)
    assert torch.isfinite(out).all()


def test_dense_kernel_equals_naive_powers_and_a_trains_only_when_asked():
    cfg = S4Config(d_model=4, d_state=16, n_layers=1, kernel="dense", a_init="legs", trainable_a=True)
    model = _model(cfg)
    k = model.blocks[0].kernel
    with torch.no_grad():
        assert_close(k(100), kernel_naive(k.c, *k.discrete(), 100), **F32)
    k(100).square().sum().backward()
    assert k.a.grad is not None and k.a.grad.abs().sum() > 0
    fixed = _model(S4Config(**{**cfg.__dict__, "trainable_a": False})).blocks[0].kernel
    assert "a" in dict(fixed.named_buffers()) and "a" not in dict(fixed.named_parameters())


def test_init_is_a_function_of_the_generator_alone():
    cfg = S4Config(d_model=8, d_state=8, n_layers=2, kernel="dense", a_init="random")
    m1 = _model(cfg, seed=7)
    torch.rand(100)  # the global RNG moves; the model must not care
    m2 = _model(cfg, seed=7)
    m3 = _model(cfg, seed=8)
    for (name, p1), p2, p3 in zip(m1.state_dict().items(), m2.state_dict().values(), m3.state_dict().values()):
        assert_close(p1, p2, rtol=0, atol=0)
    assert any(not torch.equal(a, b) for a, b in zip(m1.state_dict().values(), m3.state_dict().values()))
    state = torch.get_rng_state()
    _model(cfg, seed=7)
    assert torch.equal(state, torch.get_rng_state())  # building from a generator leaves the global RNG alone
    with init_rng(7):  # no generator: the global RNG, scoped by init_rng
        g1 = SequenceClassifier(cfg).state_dict()
    with init_rng(7):
        g2 = SequenceClassifier(cfg).state_dict()
    for a, b in zip(g1.values(), g2.values()):
        assert_close(a, b, rtol=0, atol=0)

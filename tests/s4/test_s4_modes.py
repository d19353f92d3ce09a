"""Convolution (FFT, padded to 2L) equals the direct sum and the recurrence; layers and the classifier give the same
features in CNN mode and RNN mode; causality; param groups; the log Δ guard."""

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.testing import assert_close

from mlreads.s4.kernels import fft_conv
from mlreads.s4.model import S4Config, SequenceClassifier, param_groups
from mlreads.s4.reference import causal_conv_ref, recurrence_ref

F32 = dict(rtol=1e-3, atol=1e-4)  # documented float32/complex64 tolerance (model.py docstring)


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
    model = SequenceClassifier(cfg)
    kernel = model.blocks[0].kernel
    length = 60
    u = torch.randn(2, 4, length, generator=torch.Generator().manual_seed(1))  # (B, H, L)
    with torch.no_grad():
        y_conv = fft_conv(u, kernel(length))
        a_bar, b_bar, c, diagonal, scale = kernel.step_form(length)
        y_rec = recurrence_ref(a_bar, b_bar, c, u.to(b_bar.dtype), scale=scale)
    assert_close(y_conv, y_rec.float(), **F32)


@pytest.mark.parametrize("kw", KINDS[:1] + KINDS[3:5], ids=lambda kw: kw["kernel"])
def test_classifier_cnn_mode_equals_rnn_mode(kw):
    cfg = S4Config(d_model=8, d_state=8, n_layers=2, dropout=0.3, **kw)
    model = SequenceClassifier(cfg).eval()  # eval: dropout is the identity in both modes
    x = torch.rand(3, 50, 1, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        assert_close(model.features(x), model.features_recurrent(x), **F32)


def test_causality_and_dropout_identity_in_eval():
    model = SequenceClassifier(S4Config(d_model=8, d_state=8, n_layers=2, dropout=0.5)).eval()
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
    model = SequenceClassifier(S4Config(d_model=8, d_state=8, n_layers=2))
    out, cache = model.run_with_cache(torch.rand(2, 10, 1))
    assert out.shape == (2, 10)
    assert {"blocks.0.hook_ssm_out", "blocks.1.hook_ssm_out", "hook_features"} <= set(cache)
    assert_close(cache["hook_features"].mean(1) @ model.decoder.weight.T + model.decoder.bias, out)


@pytest.mark.parametrize("kernel", ["s4d", "s4", "dense"])
def test_param_groups_put_ssm_params_at_low_lr_without_decay(kernel):
    model = SequenceClassifier(S4Config(d_model=8, d_state=8, n_layers=2, kernel=kernel, trainable_a=True))
    groups = param_groups(model, lr=1e-2, weight_decay=0.05)
    ids = [id(p) for g in groups for p in g["params"]]
    assert sorted(ids) == sorted(id(p) for p in model.parameters())  # each parameter exactly once
    ssm = groups[0]
    assert ssm["lr"] <= 1e-3 and ssm["weight_decay"] == 0.0
    names = {id(p): n for n, p in model.named_parameters()}
    ssm_names = {names[id(p)].split(".")[-1] for p in ssm["params"]}
    assert "log_dt" in ssm_names and "b" in ssm_names and ({"a_log_re", "a_im"} <= ssm_names or "a" in ssm_names)
    assert not any(n.endswith(("c", "c_tilde")) for n in ssm_names)
    assert all(g["weight_decay"] == 0 for g in groups if any(p.ndim < 2 for p in g["params"]) and g is not groups[1])


@pytest.mark.parametrize("kernel", ["s4d", "s4", "dense"])
def test_log_dt_guard_keeps_kernel_finite(kernel):
    model = SequenceClassifier(S4Config(d_model=4, d_state=8, n_layers=1, kernel=kernel))
    k = model.blocks[0].kernel
    with torch.no_grad():
        k.log_dt.copy_(torch.tensor([-1e4, 1e4, math.nan, 0.0]).nan_to_num(nan=-50.0))
        out = k(64)
    assert torch.isfinite(out).all()


def test_dense_kernel_methods_agree_and_a_trains_only_when_asked():
    cfg = S4Config(d_model=4, d_state=16, n_layers=1, kernel="dense", a_init="legs", trainable_a=True)
    model = SequenceClassifier(cfg)
    k = model.blocks[0].kernel
    k_naive = SequenceClassifier(S4Config(**{**cfg.__dict__, "dense_method": "naive"})).blocks[0].kernel
    assert_close(k(100), k_naive(100), **F32)
    k(100).square().sum().backward()
    assert k.a.grad is not None and k.a.grad.abs().sum() > 0
    fixed = SequenceClassifier(S4Config(**{**cfg.__dict__, "trainable_a": False})).blocks[0].kernel
    assert "a" in dict(fixed.named_buffers()) and "a" not in dict(fixed.named_parameters())

"""The fused causal conv1d + SiLU and gate split (`mlreads.mamba.conv`) against its PyTorch twin, forward and
backward."""

import pytest
import torch

from mlreads.mamba import csrc
from mlreads.mamba.conv import conv_and_gate, conv_and_gate_torch

pytestmark = pytest.mark.skipif(not csrc.available(), reason="the fused extension cannot be built here")


def _inputs(batch, dim, length, k, dtype, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, length, 2 * dim, generator=g, dtype=torch.float64).to(dtype)  # in_proj's output xz
    w = torch.randn(dim, 1, k, generator=g, dtype=torch.float64).to(dtype)
    b = torch.randn(dim, generator=g, dtype=torch.float64).to(dtype)
    prev = torch.randn(batch, dim, k - 1, generator=g, dtype=torch.float64).to(dtype)
    return x, w, b, prev


def _grads(fn, x, w, b, prev, seed=1):
    leaves = [t.detach().requires_grad_() if t is not None else None for t in (x, w, b, prev)]
    u, z = fn(*leaves)
    g = torch.Generator().manual_seed(seed)
    torch.autograd.backward([u, z], [torch.randn(t.shape, generator=g, dtype=t.dtype) for t in (u, z)])
    return [u, z] + [t.grad for t in leaves if t is not None]


@pytest.mark.parametrize("dtype,tol", [(torch.float64, 1e-12), (torch.float32, 2e-5)])
@pytest.mark.parametrize("length", [1, 3, 17, 64])  # shorter than the kernel, and tails after full vectors
@pytest.mark.parametrize("with_bias,with_prev", [(True, False), (False, True), (True, True)])
def test_fused_conv_matches_torch_forward_and_backward(dtype, tol, length, with_bias, with_prev):
    x, w, b, prev = _inputs(2, 21, length, 4, dtype)  # 21 channels: a full tile of 16 and a partial one
    b, prev = (b if with_bias else None), (prev if with_prev else None)
    fused = _grads(lambda *a: conv_and_gate(*a, fused=True), x, w, b, prev)
    ref = _grads(conv_and_gate_torch, x, w, b, prev)
    assert len(fused) == len(ref) == 4 + with_bias + with_prev
    for f, r in zip(fused, ref):
        torch.testing.assert_close(f, r, rtol=tol, atol=tol)


def test_fused_conv_gradcheck():
    x, w, b, prev = _inputs(2, 3, 9, 4, torch.float64)
    leaves = [t.detach().requires_grad_() for t in (x, w, b, prev)]
    assert torch.autograd.gradcheck(lambda *a: conv_and_gate(*a), leaves)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_half_conv_accumulates_in_float32(dtype):
    x, w, b, prev = _inputs(2, 4, 20, 4, torch.float32)
    out = conv_and_gate(x.to(dtype), w.to(dtype), b.to(dtype), prev.to(dtype))
    ref = conv_and_gate_torch(*(t.to(dtype).float() for t in (x, w, b, prev)))
    for o, r in zip(out, ref):
        assert o.dtype == dtype
        torch.testing.assert_close(o.float(), r, rtol=2e-2, atol=2e-2)


def test_threads_do_not_change_the_conv_gradients():
    x, w, b, prev = _inputs(3, 40, 40, 4, torch.float32)
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = _grads(conv_and_gate, x, w, b, prev)
        torch.set_num_threads(2)
        two = _grads(conv_and_gate, x, w, b, prev)
    finally:
        torch.set_num_threads(before)
    for a, c in zip(one, two):
        torch.testing.assert_close(a, c, rtol=1e-6, atol=1e-6)

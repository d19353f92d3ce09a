"""The fused causal conv1d + SiLU (`mlreads.mamba.conv`) against its PyTorch twin, forward and backward."""

import pytest
import torch

from mlreads.mamba import csrc
from mlreads.mamba.conv import causal_conv1d_silu, conv1d_silu_torch

pytestmark = pytest.mark.skipif(not csrc.available(), reason="the fused extension cannot be built here")


def _inputs(batch, dim, length, k, dtype, seed=0, layout="contiguous"):
    """x (B, E, L): contiguous, a (B, L, E) tensor seen transposed, or the first half of a (B, 2E, L) one."""
    g = torch.Generator().manual_seed(seed)
    if layout == "contiguous":
        x = torch.randn(batch, dim, length, generator=g, dtype=torch.float64)
    elif layout == "transposed":
        x = torch.randn(batch, length, dim, generator=g, dtype=torch.float64).transpose(1, 2)
    else:
        x = torch.randn(batch, 2 * dim, length, generator=g, dtype=torch.float64)[:, :dim]
    x = x.to(dtype)
    w = torch.randn(dim, 1, k, generator=g, dtype=torch.float64).to(dtype)
    b = torch.randn(dim, generator=g, dtype=torch.float64).to(dtype)
    prev = torch.randn(batch, dim, k - 1, generator=g, dtype=torch.float64).to(dtype)
    return x, w, b, prev


def _grads(fn, x, w, b, prev, seed=1):
    leaves = [t.detach().requires_grad_() if t is not None else None for t in (x, w, b, prev)]
    u = fn(*leaves)
    u.backward(torch.randn(u.shape, generator=torch.Generator().manual_seed(seed), dtype=u.dtype))
    return [u] + [t.grad for t in leaves if t is not None]


@pytest.mark.parametrize("dtype,tol", [(torch.float64, 1e-12), (torch.float32, 2e-5)])
@pytest.mark.parametrize("length", [1, 3, 17, 64])  # shorter than the kernel, and tails after full vectors
@pytest.mark.parametrize("with_bias,with_prev", [(True, False), (False, True), (True, True)])
@pytest.mark.parametrize("layout", ["contiguous", "transposed", "sliced"])
def test_fused_conv_matches_torch_forward_and_backward(dtype, tol, length, with_bias, with_prev, layout):
    x, w, b, prev = _inputs(2, 21, length, 4, dtype, layout=layout)  # 21 channels: a full tile of 16 and a partial one
    b, prev = (b if with_bias else None), (prev if with_prev else None)
    fused = _grads(lambda *a: causal_conv1d_silu(*a, fused=True), x, w, b, prev)
    ref = _grads(conv1d_silu_torch, x, w, b, prev)
    assert len(fused) == len(ref) == 3 + with_bias + with_prev
    for f, r in zip(fused, ref):
        torch.testing.assert_close(f, r, rtol=tol, atol=tol)


def test_fused_conv_gradcheck():
    x, w, b, prev = _inputs(2, 3, 9, 4, torch.float64)
    leaves = [t.detach().requires_grad_() for t in (x, w, b, prev)]
    assert torch.autograd.gradcheck(lambda *a: causal_conv1d_silu(*a), leaves)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_half_conv_accumulates_in_float32(dtype):
    x, w, b, prev = _inputs(2, 4, 20, 4, torch.float32)
    out = causal_conv1d_silu(x.to(dtype), w.to(dtype), b.to(dtype), prev.to(dtype))
    ref = conv1d_silu_torch(*(t.to(dtype).float() for t in (x, w, b, prev)))
    assert out.dtype == dtype
    torch.testing.assert_close(out.float(), ref, rtol=2e-2, atol=2e-2)


def test_threads_do_not_change_the_conv_gradients():
    x, w, b, prev = _inputs(3, 40, 40, 4, torch.float32)
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = _grads(causal_conv1d_silu, x, w, b, prev)
        torch.set_num_threads(2)
        two = _grads(causal_conv1d_silu, x, w, b, prev)
    finally:
        torch.set_num_threads(before)
    for a, c in zip(one, two):
        torch.testing.assert_close(a, c, rtol=1e-6, atol=1e-6)

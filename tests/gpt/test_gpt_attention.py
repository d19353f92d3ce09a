"""The attention functions against the loop reference (gradients too), SDPA, and the KV-cache mask alignment."""

import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.testing import assert_close

from mlreads.gpt.attention import (
    attend,
    attention_pattern,
    attention_scores,
    causal_mask,
)
from mlreads.gpt.reference import attention_ref


def test_causal_mask_is_lower_triangular():
    m = causal_mask(4)
    assert m.dtype == torch.bool
    expected = torch.tensor([[i >= j for j in range(4)] for i in range(4)])
    assert torch.equal(m, expected)


@settings(max_examples=15, deadline=None)
@given(
    B=st.integers(1, 2),
    H=st.integers(1, 3),
    Lk=st.integers(1, 7),
    P=st.integers(1, 5),
    dq=st.integers(0, 6),
    causal=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_pattern_and_attend_match_naive_loop(B, H, Lk, P, dq, causal, seed):
    Lq = max(1, Lk - dq)  # Lq <= Lk: the queries are the last Lq positions (KV cache)
    g = torch.Generator().manual_seed(seed)
    q = torch.randn(B, H, Lq, P, generator=g, dtype=torch.float64)
    k = torch.randn(B, H, Lk, P, generator=g, dtype=torch.float64)
    v = torch.randn(B, H, Lk, P, generator=g, dtype=torch.float64)
    pattern = attention_pattern(q, k, causal=causal)
    ref_pattern, ref_out = attention_ref(q, k, v, causal)
    assert_close(pattern, ref_pattern, rtol=1e-10, atol=1e-12)
    assert_close(attend(pattern, v), ref_out, rtol=1e-10, atol=1e-12)
    assert_close(pattern.sum(-1), torch.ones(B, H, Lq, dtype=torch.float64), rtol=0, atol=1e-12)


def test_scores_scale_by_sqrt_dhead():
    q = torch.ones(1, 1, 1, 16)
    k = torch.ones(1, 1, 3, 16)
    assert_close(attention_scores(q, k), torch.full((1, 1, 1, 3), 16 / 4.0), rtol=0, atol=0)


def test_explicit_path_matches_sdpa():
    g = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(2, 3, 6, 4, generator=g) for _ in range(3))
    ours = attend(attention_pattern(q, k, causal=True), v)
    sdpa = torch.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=True)
    assert_close(ours, sdpa, rtol=1e-5, atol=1e-6)


def test_gradients_match_reference():
    g = torch.Generator().manual_seed(3)
    q, k, v = (torch.randn(1, 2, 5, 3, generator=g, dtype=torch.float64, requires_grad=True) for _ in range(3))
    w = torch.randn(1, 2, 5, 3, generator=g, dtype=torch.float64)
    fast = (attend(attention_pattern(q, k), v) * w).sum()
    grads = torch.autograd.grad(fast, (q, k, v))
    slow = (attention_ref(q, k, v)[1] * w).sum()
    ref_grads = torch.autograd.grad(slow, (q, k, v))
    for a, b in zip(grads, ref_grads):
        assert_close(a, b, rtol=1e-10, atol=1e-12)

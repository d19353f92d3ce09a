import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from mlreads.core.data.synthetic import (
    induction_heads,
    repeated_random_tokens,
    selective_copying,
)


def _gen(seed=0):
    return torch.Generator().manual_seed(seed)


def test_repeated_random_tokens_repeats_and_is_seeded():
    x = repeated_random_tokens(3, 7, 11, _gen(1), n_repeats=3)
    assert x.shape == (3, 21) and x.dtype == torch.long
    torch.testing.assert_close(x[:, :7], x[:, 7:14], rtol=0, atol=0)
    torch.testing.assert_close(x[:, :7], x[:, 14:], rtol=0, atol=0)
    assert int(x.min()) >= 0 and int(x.max()) < 11
    torch.testing.assert_close(x, repeated_random_tokens(3, 7, 11, _gen(1), n_repeats=3), rtol=0, atol=0)
    assert not torch.equal(x, repeated_random_tokens(3, 7, 11, _gen(2), n_repeats=3))


@settings(max_examples=30, deadline=None)
@given(batch=st.integers(1, 4), seq_len=st.integers(16, 64), n_mem=st.integers(1, 16), vocab=st.integers(3, 20),
       seed=st.integers(0, 1000))
def test_selective_copying_format(batch, seq_len, n_mem, vocab, seed):
    n_mem = min(n_mem, seq_len)
    x, y, m = selective_copying(batch, seq_len, n_memorize=n_mem, vocab=vocab, gen=_gen(seed))
    assert x.shape == y.shape == m.shape == (batch, seq_len + n_mem)
    assert bool((x[:, seq_len:] == vocab - 1).all())
    assert bool(m[:, seq_len:].all()) and not bool(m[:, :seq_len].any())
    assert bool((y[~m] == -100).all())
    body = x[:, :seq_len]
    for b in range(batch):
        data = body[b][body[b] != 0]
        assert data.numel() == n_mem  # data tokens are never 0 (noise)
        torch.testing.assert_close(data, y[b, seq_len:], rtol=0, atol=0)  # in order
        assert int(data.min()) >= 1 and int(data.max()) <= vocab - 2
    x2, _, _ = selective_copying(batch, seq_len, n_memorize=n_mem, vocab=vocab, gen=_gen(seed))
    torch.testing.assert_close(x, x2, rtol=0, atol=0)


@settings(max_examples=30, deadline=None)
@given(batch=st.integers(1, 6), seq_len=st.integers(3, 80), vocab=st.integers(2, 20), seed=st.integers(0, 1000))
def test_induction_heads_format(batch, seq_len, vocab, seed):
    x, ans = induction_heads(batch, seq_len, vocab=vocab, gen=_gen(seed))
    special = vocab - 1
    assert x.shape == (batch, seq_len) and ans.shape == (batch,)
    assert bool((x[:, -1] == special).all())
    for b in range(batch):
        where = (x[b] == special).nonzero().flatten().tolist()
        assert len(where) == 2 and where[1] == seq_len - 1  # the special token exactly twice
        assert where[0] <= seq_len - 3
        assert int(x[b, where[0] + 1]) == int(ans[b]) != special
    x2, a2 = induction_heads(batch, seq_len, vocab=vocab, gen=_gen(seed))
    torch.testing.assert_close(x, x2, rtol=0, atol=0)
    torch.testing.assert_close(ans, a2, rtol=0, atol=0)


def test_induction_positions_spread_over_sequence():
    x, _ = induction_heads(2000, 64, vocab=16, gen=_gen(0))
    first = (x == 15).int().argmax(dim=1).float()
    assert 20 < float(first.mean()) < 42 and int(first.min()) == 0 and int(first.max()) == 61


@pytest.mark.parametrize("seq_len,distance", [(3, 2), (10, 9), (64, 5), (4096, 1000)])
def test_induction_heads_fixed_distance(seq_len, distance):
    x, ans = induction_heads(4, seq_len, vocab=16, gen=_gen(1), distance=distance)
    for b in range(4):
        where = (x[b] == 15).nonzero().flatten().tolist()
        assert where == [seq_len - 1 - distance, seq_len - 1]
        assert int(x[b, where[0] + 1]) == int(ans[b])
    for bad in (1, seq_len):
        with pytest.raises(ValueError, match="distance"):
            induction_heads(1, seq_len, gen=_gen(1), distance=bad)

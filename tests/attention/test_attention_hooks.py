"""Hook points of RNNsearch / RNNencdec and of parametric attention pooling: the cache equals forward, holds the
documented names and shapes, and its values are the quantities they name (alignments per decoder step, attention
weights whose rows sum to 1); zeroing a hook changes the output."""

import sys
from pathlib import Path

import pytest
import torch

from mlreads.attention.kernel_regression import ParametricAttention, attention_pooling
from mlreads.attention.rnn import RNNConfig, Seq2Seq
from mlreads.core.data.translation import BOS, PAD

sys.path.insert(0, str(Path(__file__).parents[1]))
from hook_checks import (
    assert_ablation_changes_output,
    assert_names_and_shapes,
    cache_matching_forward,
)

B, S, T = 3, 6, 5
CFG = RNNConfig(src_vocab=20, tgt_vocab=20, d_embed=8, d_hidden=12, d_maxout=6, d_align=10)


def _batch():
    g = torch.Generator().manual_seed(1)
    src, tgt = torch.randint(4, 20, (B, S), generator=g), torch.randint(4, 20, (B, T), generator=g)
    src[1, 4:] = PAD
    tgt[:, 0] = BOS
    return src, tgt


@pytest.mark.parametrize("attention", [True, False], ids=["RNNsearch", "RNNencdec"])
def test_seq2seq_cache(attention):
    torch.manual_seed(0)
    model = Seq2Seq(RNNConfig(**{**CFG.__dict__, "attention": attention}))
    src, tgt = _batch()
    cache = cache_matching_forward(model, src, tgt)
    n = CFG.d_hidden
    expected = {"encoder.hook_embed": (B, S, CFG.d_embed), "decoder.hook_init_state": (B, n)}
    if attention:
        expected |= {"encoder.hook_annotations": (B, S, 2 * n), "decoder.hook_alpha": (B, S),
                     "decoder.hook_attn": (B, T, S)}  # fmt: skip
    else:
        expected["encoder.hook_summary"] = (B, n)
    assert_names_and_shapes(cache, expected)
    torch.testing.assert_close(cache["encoder.hook_embed"], model.src_embed(src).detach(), rtol=0, atol=0)
    if attention:
        attn = cache["decoder.hook_attn"]  # (B, T, S): one row per decoder step
        torch.testing.assert_close(attn, model(src, tgt)[1].detach(), rtol=0, atol=0)
        torch.testing.assert_close(attn.sum(-1), torch.ones(B, T))
        assert (attn[1, :, 4:] == 0).all()  # padding gets no attention
        torch.testing.assert_close(cache["decoder.hook_alpha"], attn[:, -1], rtol=0, atol=0)  # the last step
        torch.testing.assert_close(cache["decoder.hook_init_state"],
                                   torch.tanh(model.w_init(cache["encoder.hook_annotations"][:, 0, n:])))
        assert_ablation_changes_output(model, "decoder.hook_alpha", src, tgt)
    assert_ablation_changes_output(model, "encoder.hook_embed", src, tgt)


def test_parametric_attention_cache():
    g = torch.Generator().manual_seed(0)
    keys, values, queries = torch.rand(9, generator=g) * 5, torch.randn(9, generator=g), torch.rand(4, generator=g) * 5
    model = ParametricAttention(w=1.7)
    cache = cache_matching_forward(model, queries, keys, values)
    assert_names_and_shapes(cache, {"hook_scores": (4, 9), "hook_pattern": (4, 9), "hook_out": (4,)})
    _, weights = attention_pooling(queries, keys, values, bandwidth=1 / 1.7)  # the same attention with h = 1 / w
    torch.testing.assert_close(cache["hook_pattern"], weights)
    torch.testing.assert_close(cache["hook_pattern"].sum(1), torch.ones(4))
    assert_ablation_changes_output(model, "hook_pattern", queries, keys, values)

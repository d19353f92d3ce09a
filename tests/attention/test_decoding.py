"""Beam search (core.decoding) on both translation models: beam 1 is greedy, a wider beam never scores worse."""

import pytest
import torch

from mlreads.attention.rnn import RNNConfig, Seq2Seq
from mlreads.core.data.translation import (
    EOS,
    SyntheticTranslation,
    TranslationConfig,
    pad_batch,
)
from mlreads.transformer.model import EncoderDecoder, TransformerConfig


def _models(data):
    torch.manual_seed(0)
    rnn = Seq2Seq(RNNConfig(src_vocab=data.src_vocab, tgt_vocab=data.tgt_vocab)).eval()
    tr = EncoderDecoder(TransformerConfig(src_vocab=data.src_vocab, tgt_vocab=data.tgt_vocab, d_model=32, n_heads=4,
                                          d_mlp=64, n_ctx=64, dropout=0.0)).eval()
    return rnn, tr


def _logprob(model, src, seq):
    tgt_in = torch.tensor([[1] + seq[:-1]])
    logits = model(src, tgt_in)
    logits = logits[0] if isinstance(logits, tuple) else logits
    return logits.log_softmax(-1)[0, torch.arange(len(seq)), torch.tensor(seq)].sum().item()


@pytest.mark.parametrize("kind", ["rnn", "transformer"])
def test_beam_one_is_greedy_and_wider_beams_score_at_least_as_well(kind):
    data = SyntheticTranslation(TranslationConfig())
    rnn, tr = _models(data)
    model = rnn if kind == "rnn" else tr
    src = pad_batch(data.sample(1, torch.Generator().manual_seed(2), 6, 10))[0]
    greedy = model.greedy(src, 12)
    greedy = greedy[0] if isinstance(greedy, tuple) else greedy
    g = [t for t in greedy[0].tolist() if t != 0]
    assert model.beam(src, 1, 12, alpha=0.0) == g
    wide = model.beam(src, 5, 12, alpha=0.0)
    if wide[-1] == EOS and g[-1] == EOS:
        assert _logprob(model, src, wide) >= _logprob(model, src, g) - 1e-5


def test_beam_search_finds_the_sequence_greedy_misses():
    """A two-step toy: greedy takes token 3 first (p 0.6) but then only reaches EOS with p 0.3; token 4 first
    (p 0.4) leads to EOS with p 1.0. Best sequence: [4, EOS] (0.4 > 0.18)."""
    from mlreads.core.nn.decoding import beam_search

    V, BOS_, EOS_ = 6, 1, 2

    def step(tokens, state):
        logp = torch.full((len(tokens), V), -1e9)
        for i, t in enumerate(tokens.tolist()):
            if t == BOS_:
                logp[i, 3], logp[i, 4] = torch.log(torch.tensor(0.6)), torch.log(torch.tensor(0.4))
            elif t == 3:
                logp[i, EOS_], logp[i, 5] = torch.log(torch.tensor(0.3)), torch.log(torch.tensor(0.7))
            elif t == 4:
                logp[i, EOS_] = 0.0
            else:  # token 5: EOS with p 0.1
                logp[i, EOS_], logp[i, 5] = torch.log(torch.tensor(0.1)), torch.log(torch.tensor(0.9))
        return logp, state

    greedy, _ = beam_search(step, torch.zeros(1), beam=1, max_len=3, bos=BOS_, eos=EOS_)
    best, score = beam_search(step, torch.zeros(1), beam=2, max_len=3, bos=BOS_, eos=EOS_)
    assert greedy == [3, 5, 5] and best == [4, EOS_]
    assert score == pytest.approx(float(torch.log(torch.tensor(0.4))), abs=1e-6)

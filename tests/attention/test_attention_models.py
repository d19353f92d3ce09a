"""Bahdanau's RNNsearch/RNNencdec, the paper's GRU against nn.GRUCell, Nadaraya-Watson = attention pooling, and the
synthetic translation data."""

import pytest
import torch
from torch import nn

from mlreads.attention.kernel_regression import (
    attention_pooling,
    loo_bandwidth,
    nadaraya_watson,
    toy_data,
    toy_function,
)
from mlreads.attention.rnn import PaperGRUCell, RNNConfig, Seq2Seq, seq2seq_loss
from mlreads.core.data.translation import (
    EOS,
    PAD,
    SyntheticTranslation,
    TranslationConfig,
    pad_batch,
)


def _gru_pair(d_in=5, H=7, seed=0):
    torch.manual_seed(seed)
    ref = nn.GRUCell(d_in, H).double()
    ours = PaperGRUCell(d_in, H, reset_after=True).double()
    with torch.no_grad():  # nn.GRUCell's z weighs the old state: the paper's z is its 1 - z, i.e. negated pre-activations
        flip = torch.ones(3 * H, 1, dtype=torch.float64)
        flip[H : 2 * H] = -1
        ours.w.weight.copy_(ref.weight_ih * flip)
        ours.w.bias.copy_((ref.bias_ih + torch.cat([ref.bias_hh[: 2 * H], torch.zeros(H, dtype=torch.float64)]))
                          * flip[:, 0])
        ours.u_rz.weight.copy_(ref.weight_hh[: 2 * H] * flip[: 2 * H])
        ours.u.weight.copy_(ref.weight_hh[2 * H :])
        ours.u.bias.copy_(ref.bias_hh[2 * H :])
    return ref, ours


def test_reset_after_cell_equals_nn_grucell_and_the_papers_cell_does_not():
    ref, ours = _gru_pair()
    g = torch.Generator().manual_seed(3)
    x, s = torch.randn(4, 5, generator=g, dtype=torch.float64), torch.randn(4, 7, generator=g, dtype=torch.float64)
    torch.testing.assert_close(ours(x, s), ref(x, s), rtol=0, atol=1e-12)
    paper = PaperGRUCell(5, 7, reset_after=False).double()
    paper.load_state_dict({k: v for k, v in ours.state_dict().items() if k != "u.bias"}, strict=False)
    with torch.no_grad():
        paper.w.bias.add_(torch.cat([torch.zeros(14, dtype=torch.float64), ours.u.bias]))
    diff = (paper(x, s) - ref(x, s)).abs().max()
    assert diff > 1e-2  # U [r ∘ s] is not r ∘ (U s): a different function
    # ...except when the reset gate is fully open (r = 1), where the two forms coincide
    with torch.no_grad():
        paper.w.bias[:7] = 1e3
        ours.w.bias[:7] = 1e3
    torch.testing.assert_close(paper(x, s), ours(x, s), rtol=0, atol=1e-12)


def test_nadaraya_watson_is_softmax_attention_to_float64_precision():
    x, y = toy_data(200, torch.Generator().manual_seed(0))
    q = torch.linspace(0, 5, 50, dtype=torch.float64)
    for h in (0.1, 0.3, 1.0):
        pooled, weights = attention_pooling(q, x, y, h)
        torch.testing.assert_close(pooled, nadaraya_watson(q, x, y, h), rtol=0, atol=1e-12)
        torch.testing.assert_close(weights.sum(1), torch.ones(50, dtype=torch.float64), rtol=0, atol=1e-12)
    h, errors = loo_bandwidth(x, y, torch.logspace(-2, 0.5, 30, dtype=torch.float64))
    assert 0.05 < h < 1.0 and errors.argmin() not in (0, 29)  # an interior minimum
    est = attention_pooling(q, x, y, h)[0]
    assert ((est - toy_function(q)) ** 2).mean() < 0.1


def test_translation_pairs_reorder_noun_phrases_and_align():
    data = SyntheticTranslation(TranslationConfig())
    g = torch.Generator().manual_seed(0)
    pairs = data.sample(50, g, 5, 50)
    for p in pairs:
        assert 5 <= len(p.src) <= 50 and len(p.tgt) == len(p.src) and sorted(p.alignment) == list(range(len(p.src)))
        assert [data.to_tgt[p.src[a]] for a in p.alignment] == p.tgt
        assert data.word_class[p.src[-1]] not in ("F", "A")
    A, N = data.words["A"][0], data.words["N"][0]
    F_, V = data.words["F"][0], data.words["V"][0]
    assert data.translate([F_, A, A + 1, N, V]).alignment == [0, 3, 2, 1, 4]  # F A1 A2 N -> F N A2 A1
    src, tgt_in, tgt_out = pad_batch(pairs[:4])
    words = (tgt_out[:, :-1] != PAD) & (tgt_out[:, :-1] != EOS)
    assert (src == EOS).sum() == 4 and (tgt_out == EOS).sum() == 4
    assert torch.equal(tgt_in[:, 1:][words], tgt_out[:, :-1][words])  # teacher forcing: the input is the shifted output
    again = SyntheticTranslation(TranslationConfig()).sample(50, torch.Generator().manual_seed(0), 5, 50)
    assert [p.tgt for p in again] == [p.tgt for p in pairs]


@pytest.mark.parametrize("attention", [True, False])
def test_seq2seq_padding_invariance_alignments_and_greedy(attention):
    data = SyntheticTranslation(TranslationConfig())
    torch.manual_seed(0)
    model = Seq2Seq(RNNConfig(src_vocab=data.src_vocab, tgt_vocab=data.tgt_vocab, attention=attention)).eval()
    pairs = data.sample(3, torch.Generator().manual_seed(1), 5, 12)
    src, tgt_in, tgt_out = pad_batch(pairs)
    logits, align = model(src, tgt_in)
    # one sentence alone (no padding) gives the same logits as inside the padded batch
    alone, _ = model(*pad_batch(pairs[:1])[:2])
    T = len(pairs[0].tgt) + 1
    torch.testing.assert_close(logits[0, :T], alone[0, :T], rtol=0, atol=1e-5)
    if attention:
        assert align.shape == (3, tgt_in.shape[1], src.shape[1])
        torch.testing.assert_close(align.sum(-1), torch.ones(3, tgt_in.shape[1]), rtol=0, atol=1e-5)
        assert (align[src[:, None, :].expand_as(align) == PAD] == 0).all()
    else:
        assert align is None
    out, _ = model.greedy(src, 20)
    assert out.shape[0] == 3 and out.shape[1] <= 20
    loss = seq2seq_loss(model, (src, tgt_in, tgt_out))
    assert abs(loss.item() - torch.log(torch.tensor(float(data.tgt_vocab))).item()) < 1.0  # near uniform at init


def test_parallel_text_reads_pairs_splits_and_refuses_bad_lines(tmp_path):
    from mlreads.core.data.translation import ParallelText
    from mlreads.core.errors import DataMissing

    path = tmp_path / "pairs.tsv"
    path.write_text("".join(f"the cat {i}\tle chat {i}\n" for i in range(20)))
    data = ParallelText(path)
    assert len(data.train) == 18 and len(data.test) == 2
    assert data.decode(data.test[0].tgt) == "le chat 18" and data.decode(data.test[0].src, side="src") == "the cat 18"
    assert all(p in data.train for p in data.sample(5, torch.Generator().manual_seed(0)))
    path.write_text("no tab here\n" * 12)
    with pytest.raises(DataMissing, match="line 1"):
        ParallelText(path)

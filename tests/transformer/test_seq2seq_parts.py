"""Parts of the redesigned transformer/seq2seq and transformer/ablations: the time to a common BLEU, the mean dev
BLEU over time, the throughput probe (which must leave the thread count as it found it), and the per-sentence
teacher-forced scores that the ablations' paired perplexity rests on."""

import math

import pytest
import torch

from mlreads.core.data.translation import TranslationConfig, make_task
from mlreads.transformer.exp_common import sentence_scores, teacher_forced
from mlreads.transformer.exp_seq2seq import (
    _mean_over_time,
    _time_to_common_bleu,
    throughput,
)
from mlreads.transformer.model import EncoderDecoder, TransformerConfig


def test_time_to_common_bleu_is_90_percent_of_the_lower_final_one():
    curves = {"Transformer": ([10, 20, 30], [20.0, 50.0, 60.0]), "RNNsearch": ([15, 30, 45], [30.0, 40.0, 50.0])}
    r = _time_to_common_bleu(curves)
    assert r["common_dev_bleu"] == pytest.approx(45.0)
    assert (r["time_to_common_bleu_transformer"], r["time_to_common_bleu_rnnsearch"]) == (20, 45)
    assert r["time_ratio_to_common_bleu"] == pytest.approx(20 / 45)


def _model_and_pairs():
    task = make_task(TranslationConfig(max_len=8))
    torch.manual_seed(0)
    model = EncoderDecoder(TransformerConfig(src_vocab=task.src_vocab, tgt_vocab=task.tgt_vocab, d_model=16,
                                             n_heads=2, d_mlp=32, n_layers=1, n_ctx=24, dropout=0.0))
    return model, task.sample(12, torch.Generator().manual_seed(1))


def test_sentence_scores_add_up_to_the_teacher_forced_metrics():
    model, pairs = _model_and_pairs()
    rows = sentence_scores(model, pairs, batch_size=5)
    assert rows.shape == (12, 3) and rows[:, 1].tolist() == [len(p.tgt) + 1 for p in pairs]  # words + EOS
    tf = teacher_forced(model, pairs)
    assert tf["ppl"] == pytest.approx(math.exp(rows[:, 0].sum() / rows[:, 1].sum()))
    assert tf["token_acc"] == pytest.approx(float(rows[:, 2].sum() / rows[:, 1].sum()))


def test_throughput_trains_a_copy_and_restores_the_threads():
    from mlreads.attention import seq2seq_loss
    from mlreads.core.data.translation import pad_batch

    model, pairs = _model_and_pairs()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    threads = torch.get_num_threads()
    r = throughput(model, seq2seq_loss, pad_batch(pairs), 2, steps=2, repeats=2)
    rate = r["sentences_per_s"]
    assert rate > 0 and torch.get_num_threads() == threads
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert r["cpu_ms_per_sentence"] > 0 and set(r) == {"sentences_per_s", "cpu_ms_per_sentence"}


def test_mean_dev_bleu_over_time_is_the_area_under_the_curve_over_its_span():
    assert _mean_over_time([10.0, 20.0], [40.0, 40.0]) == pytest.approx((10 * 20 + 10 * 40) / 20)  # from 0 at t=0
    assert _mean_over_time([], []) is None

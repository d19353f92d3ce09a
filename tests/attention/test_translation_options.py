"""The translation task's options for the fair-test designs (Zipfian words, log-uniform lengths, target synonyms,
a fixed corpus) and the paired BLEU bootstrap: what each changes, and that off they change nothing."""

import collections
import math

import pytest
import torch

from mlreads.core.data.translation import TranslationConfig, corpus_batch_fn, make_task
from mlreads.core.nn.decoding import bleu, bleu_from_stats, bleu_stats, paired_bleu


def test_the_options_off_leave_the_task_as_it_was():
    plain = make_task(TranslationConfig())
    pairs = plain.sample(50, torch.Generator().manual_seed(1))
    assert all(p.tgt == [plain.to_tgt[p.src[a]] for a in p.alignment] for p in pairs)  # the bijection
    assert plain.tgt_vocab == plain.src_vocab and all(q == 1.0 for p in pairs for q in plain.token_probs(p))


def test_synonyms_are_drawn_with_their_probabilities():
    task = make_task(TranslationConfig(synonym_probs=(0.6, 0.3, 0.1)))
    pairs = task.sample(400, torch.Generator().manual_seed(2))
    assert task.tgt_vocab == 4 + 3 * (task.src_vocab - 4)
    counts = collections.Counter(task.synonyms[p.src[a]].index(t) for p in pairs for a, t in zip(p.alignment, p.tgt))
    n = sum(counts.values())
    for k, q in enumerate((0.6, 0.3, 0.1)):
        assert abs(counts[k] / n - q) < 4 * math.sqrt(q * (1 - q) / n)
    probs = task.token_probs(pairs[0])
    assert len(probs) == len(pairs[0].tgt) + 1 and probs[-1] == 1.0 and set(probs[:-1]) <= {0.6, 0.3, 0.1}
    with pytest.raises(ValueError, match="sum to 1"):
        TranslationConfig(synonym_probs=(0.6, 0.3))


def test_zipfian_words_and_log_uniform_lengths():
    task = make_task(TranslationConfig(zipf=1.0, lengths="log-uniform", min_len=5, max_len=50))
    pairs = task.sample(1000, torch.Generator().manual_seed(3))
    lengths = [len(p.src) for p in pairs]
    short = sum(L <= 12 for L in lengths) / len(lengths)
    assert abs(short - math.log(13 / 5) / math.log(51 / 5)) < 0.05 and min(lengths) >= 5 and max(lengths) <= 50
    nouns = collections.Counter(w for p in pairs for w in p.src if task.word_class[w] == "N")
    first, tenth = task.words["N"][0], task.words["N"][9]
    assert nouns[first] > 5 * nouns[tenth]  # 1/1 against 1/10


def test_a_fixed_corpus_is_sampled_from_and_only_from():
    task = make_task(TranslationConfig(max_len=12))
    corpus = task.sample(20, torch.Generator().manual_seed(4))
    src, _, _ = corpus_batch_fn(corpus, 64)(0, torch.Generator().manual_seed(5))
    allowed = {tuple(p.src) for p in corpus}
    assert src.shape[0] == 64 and all(tuple(t for t in row.tolist() if t > 3) in allowed for row in src)


def test_paired_bleu_is_the_difference_of_corpus_bleus_with_an_interval():
    task = make_task(TranslationConfig(max_len=20, synonym_probs=(0.6, 0.3, 0.1)))
    pairs = task.sample(200, torch.Generator().manual_seed(6))
    good = [[task.synonyms[p.src[a]][0] for a in p.alignment] for p in pairs]
    worse = [h[: len(h) // 2] for h in good]
    assert bleu_from_stats(bleu_stats(task, good, pairs).sum(0)) == pytest.approx(bleu(task, good, pairs))
    r = paired_bleu("d", task, good, worse, pairs, n_boot=200)
    assert r["d"] == pytest.approx(bleu(task, good, pairs) - bleu(task, worse, pairs))
    assert 0 < r["d_ci"][0] < r["d"] < r["d_ci"][1]
    same = paired_bleu("d", task, good, good, pairs, n_boot=50)
    assert same["d"] == 0 and same["d_ci"] == [0.0, 0.0]


def test_agreement_and_verb_final_clauses():
    plain = make_task(TranslationConfig(max_len=30))
    task = make_task(TranslationConfig(max_len=30, genders=3, verb_final=True))
    pairs = task.sample(200, torch.Generator().manual_seed(7))
    before = plain.sample(200, torch.Generator().manual_seed(7))
    assert [p.src for p in pairs] == [p.src for p in before]  # the same sentences, draw for draw
    assert sum(p.alignment != q.alignment for p, q in zip(pairs, before)) > 100  # verbs moved in most sentences
    assert task.tgt_vocab == plain.tgt_vocab + 2 * sum(len(task.words[c]) for c in "FAV")
    assert set(task.gender.values()) == {0, 1, 2}
    cls = task.word_class
    for p in pairs:
        form = {a: task.forms[p.src[a]].index(t) for a, t in zip(p.alignment, p.tgt) if p.src[a] in task.forms}
        for a, g in form.items():  # determiners and adjectives agree with the next noun, verbs with the one before
            nouns = [i for i, w in enumerate(p.src) if cls[w] == "N" and (i < a if cls[p.src[a]] == "V" else i > a)]
            assert g == task.gender[p.src[max(nouns) if cls[p.src[a]] == "V" else min(nouns)]]
        assert sorted(p.alignment) == list(range(len(p.src)))
        clauses = " ".join(cls[p.src[a]] for a in p.alignment).split("C")  # the target's clauses, as source classes
        main = " ".join(cls[w] for w in p.src).split("C")[0].split()
        assert (clauses[0].split()[-1] == "V") == (main[-1] == "V")  # the main clause keeps its verb where it was
        assert all(c.split()[-1] == "V" for c in clauses[1:] if "V" in c)  # subordinate clauses end with their verb
    with pytest.raises(ValueError, match="cannot be combined"):
        TranslationConfig(genders=2, synonym_probs=(0.5, 0.5))
    with pytest.raises(ValueError, match="copy"):
        TranslationConfig(task="copy", verb_final=True)

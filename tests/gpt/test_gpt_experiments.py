"""gpt/char-lm: the readable-words metric, and that `--set data.path=FILE` trains on that file."""

import json

import pytest

from mlreads.core.run.registry import REGISTRY
from mlreads.gpt.exp_char_lm import word_fraction, word_vocabulary
from mlreads.gpt.experiments import CONFIGS


def test_word_fraction_counts_known_words_only():
    vocab = word_vocabulary("To be, or not to be: that is the question. O'er the hills")
    assert {"to", "be", "question", "o'er"} <= vocab
    assert word_fraction("To BE; question!", vocab) == 1.0
    assert word_fraction("to bx qq, n0t", vocab) == 0.25  # 'n0t' has a digit: a miss even if 'not' is known
    assert word_fraction("", vocab) == 0.0


def test_quick_and_full_are_nanogpt_configs():
    q, f = CONFIGS["quick"], CONFIGS["full"]
    assert (q.n_layers, q.n_heads, q.d_model, q.n_ctx, q.batch_size, q.train.steps) == (4, 4, 128, 64, 12, 2000)
    # full: nanoGPT's 6-layer model, at the largest batch and step count that fit about two CPU-hours (its full_scale)
    assert (f.n_layers, f.n_heads, f.d_model, f.n_ctx, f.batch_size, f.train.steps) == (6, 6, 384, 256, 8, 2500)
    assert f.dropout == 0.0 and q.dropout == 0.0


def test_data_path_override_trains_on_that_file(tmp_path):
    from mlreads.core.run.runner import run_dir_name, run_experiment

    corpus = tmp_path / "tiny.txt"
    corpus.write_text("abcab cabba\n" * 400)
    exp = REGISTRY["gpt/char-lm"]  # registered by importing mlreads.gpt.experiments; other papers not needed
    overrides = {"data.path": str(corpus), "train.steps": "30", "train.eval_every": "0", "sample_chars": "50"}
    result = run_experiment(exp, budget="smoke", out=tmp_path / "runs", threads=1, overrides=overrides)
    folder = tmp_path / "runs" / "gpt/char-lm" / run_dir_name("smoke", 0, overrides)  # overridden runs: own folder
    m = result["metrics"]
    assert m["vocab_size"] == 5  # a b c space newline
    assert m["steps"] == 30
    assert result["config"]["data"]["path"] == str(corpus)
    sample = (folder / "sample.txt").read_text()
    assert len(sample) == 50 and set(sample) <= set("abc \n")
    saved = json.loads((folder / "result.json").read_text())
    assert "loss_curves.png" in saved["figures"]


def test_missing_data_path_is_data_missing(tmp_path):
    from mlreads.core.errors import DataMissing
    from mlreads.core.run.runner import run_experiment

    with pytest.raises(DataMissing):
        run_experiment(REGISTRY["gpt/char-lm"], budget="smoke", out=tmp_path, overrides={"data.path": "/nope.txt"})

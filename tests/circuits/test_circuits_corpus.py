"""Token streams of the circuits experiments: words, repeated random sequences, bigram counts."""

import torch

from mlreads.circuits.corpus import TokenStream, WordTokenizer, bigram_counts, repeated_batch, varied_repeated_batch

TEXT = "To be, or not to be: that is the question. To be is to do; to do is to be!"


def test_word_tokenizer_keeps_the_most_frequent_words_and_maps_the_rest_to_unk():
    tok = WordTokenizer(TEXT, vocab=6)
    assert tok.vocab_size == 6 and tok.itos[-1] == "<unk>"
    assert set(tok.itos[:2]) == {"to", "be"}  # 4 each; "To" is another token
    ids = tok.encode("to be or question")
    assert tok.decode(ids) == "to be <unk> <unk>"


def test_token_stream_windows_are_contiguous_and_seeded():
    stream = TokenStream(TEXT * 20, "char")
    w1 = stream.windows("train", 4, 10, torch.Generator().manual_seed(0))
    w2 = stream.windows("train", 4, 10, torch.Generator().manual_seed(0))
    assert w1.shape == (4, 11) and torch.equal(w1, w2)
    text = stream.tokenizer.decode(w1[0])
    assert text in TEXT * 20


def test_repeated_batches_repeat():
    g = torch.Generator().manual_seed(0)
    x = repeated_batch(3, 7, 50, g)
    assert x.shape == (3, 15)
    torch.testing.assert_close(x[:, 7:14], x[:, :7])
    assert torch.equal(x[:, 14], x[:, 0])
    y = varied_repeated_batch(256, 10, 50, g)
    assert y.shape == (256, 21)
    periods, fillers = set(), set()
    for row in y:
        # the shortest (filler f, period m) with row[f + m:] == row[f:-m], covering at least two periods
        f, m = min(((f, m) for m in range(2, 11) for f in range(0, 22 - 2 * m) if torch.equal(row[f + m :], row[f : 21 - m])),
                   key=lambda fm: (fm[0], fm[1]))  # fmt: skip
        periods.add(m)
        fillers.add(f)
    assert len(periods) >= 6 and len(fillers) >= 6  # no fixed offset or start solves the task


def test_bigram_counts():
    ids = torch.tensor([0, 1, 1, 2, 0, 1])
    c = bigram_counts(ids, 3)
    assert c[0, 1] == 2 and c[1, 1] == 1 and c[1, 2] == 1 and c[2, 0] == 1 and c.sum() == 5

"""What the circuits experiments draw besides corpus windows: repeated random sequences and bigram counts (corpus
windows and the word tokenizer are core's, tested in tests/core/test_data_text.py)."""

import torch

from mlreads.circuits.corpus import bigram_counts, repeated_batch, varied_repeated_batch


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

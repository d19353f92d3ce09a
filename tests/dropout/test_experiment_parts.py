"""Pieces of the dropout experiments: MC errors are nested averages that use the generator only."""

import pytest
import torch

from mlreads.dropout import DropoutMLP, MLPConfig
from mlreads.dropout.exp_mc_vs_weight_scaling import mc_errors


def test_mc_errors_are_reproducible_and_k1_is_one_thinned_net():
    torch.manual_seed(0)
    model = DropoutMLP(MLPConfig(d_in=10, d_hidden=(16,), d_out=3, p_keep_input=0.8, p_keep_hidden=0.5)).eval()
    x = torch.randn(200, 10)
    y = model(x).argmax(-1)  # labels = the weight-scaled net's predictions: its error is 0
    a = mc_errors(model, x, y, (1, 5, 50), 2, torch.Generator().manual_seed(1))
    b = mc_errors(model, x, y, (1, 5, 50), 2, torch.Generator().manual_seed(1))
    assert a == b
    # one thinned net disagrees with the average net more often than the mean of fifty
    assert sum(a[1]) / 2 > sum(a[50]) / 2
    g = torch.Generator().manual_seed(1)
    one = 100.0 * float((model(x, mode="mc", generator=g).argmax(-1) != y).float().mean())
    assert abs(a[1][0] - one) < 1e-9


def test_gap_ratio_and_its_delta_method_error():
    import math

    import numpy as np

    from mlreads.dropout.exp_mnist import gap_ratio

    rng = np.random.default_rng(0)
    n = 20_000
    te_n, tr_n = rng.random(n) < 0.04, np.zeros(n, bool)  # no dropout: 4% test error, memorised training set
    # dropout: 3% test error, mostly on the images the other arm gets wrong too (paired), 0.5% training error
    te_d, tr_d = (te_n & (rng.random(n) < 0.6)) | (rng.random(n) < 0.006), rng.random(n) < 0.005
    r, se = gap_ratio((te_d, tr_d), (te_n, tr_n))
    want = (te_d.mean() - tr_d.mean()) / te_n.mean()
    assert r == want
    # the delta method agrees with a bootstrap over both image sets
    boots = []
    for _ in range(400):
        i, j = rng.integers(0, n, n), rng.integers(0, n, n)
        boots.append((te_d[i].mean() - tr_d[j].mean()) / (te_n[i].mean() - tr_n[j].mean()))
    assert se == pytest.approx(np.std(boots, ddof=1), rel=0.2)
    assert gap_ratio((te_d, tr_d), (tr_n, tr_n)) == (math.inf, 0.0)  # no gap to shrink

"""Pieces of the dropout experiments: MC errors are nested averages that use the generator only."""

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

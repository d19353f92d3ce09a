"""core.lm (next-token loss, fixed-window evaluator) and core.figures (shared curves)."""

import math

import matplotlib

matplotlib.use("Agg")
import pytest
import torch
from torch import nn

from mlreads.core import figures
from mlreads.core.data.text import TextDataset
from mlreads.core.nn.lm import fixed_windows, lm_evaluator, next_token_loss


class Uniform(nn.Module):
    def __init__(self, V):
        super().__init__()
        self.V = V
        self.bias = nn.Parameter(torch.zeros(V))

    def forward(self, x):  # (B, L) -> (B, L, V)
        return self.bias.expand(*x.shape, self.V)


def test_next_token_loss_is_the_mean_cross_entropy_and_the_evaluator_is_fixed():
    data = TextDataset("abcdefgh" * 50)
    model = Uniform(data.vocab_size)
    assert next_token_loss(model, data.get_batch("train", 4, 8, torch.Generator())).item() == pytest.approx(
        math.log(8), abs=1e-6)
    with torch.no_grad():
        model.bias[0] = 2.0  # now the loss depends on which windows are drawn
    eval_fn = lm_evaluator(data, batch_size=3, n_ctx=5, n_batches=4, splits=("train", "val"), seed=7)
    first, again = eval_fn(model), eval_fn(model)
    assert first == again and set(first) == {"train_loss", "val_loss"}
    windows = fixed_windows(data, "val", 3, 5, 4, seed=7)
    manual = torch.stack([next_token_loss(model, b) for b in windows]).mean().item()
    assert first["val_loss"] == pytest.approx(manual, abs=1e-7)


def test_curves_label_axes_and_show_single_points_as_markers():
    fig = figures.curves({"a": ([1, 2, 3], [3, 2, 1]), "b": ([5], [0.5])}, xlabel="step", ylabel="loss",
                         refs={"baseline": 1.0})
    ax = fig.axes[0]
    assert ax.get_xlabel() == "step" and ax.get_ylabel() == "loss"
    lines = {ln.get_label(): ln for ln in ax.get_lines()}
    assert lines["b"].get_marker() not in (None, "", "None") and lines["b"].get_linestyle() in ("None", "")
    assert "baseline" in lines
    fig = figures.accuracy_curves({"m": ([1, 2], [0.5, 1.0])}, chance=0.1)
    assert list(fig.axes[0].get_lines()[0].get_ydata()) == [50.0, 100.0]
    history = [{"step": 10, "loss": 2.0}, {"step": 20, "loss": 1.5, "val_loss": 1.7}]
    fig = figures.loss_curves({"gpt": history}, refs={"unigram": 3.0})
    assert {ln.get_label() for ln in fig.axes[0].get_lines()} == {"train (batch mean)", "val (fixed evaluation windows)", "unigram"}

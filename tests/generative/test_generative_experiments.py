"""Pieces of the generative experiments: the 2-D data and the metrics' sensitivity to what they should see."""

import math

import torch

from mlreads.generative.exp_ddpm_objective_ablation import eight_gaussians
from mlreads.generative.metrics import mmd_rbf


def test_eight_gaussians_unit_variance_and_modes():
    x = eight_gaussians(20_000, torch.Generator().manual_seed(0))
    assert abs(x.var(0).mean().item() - 1.0) < 0.05
    angles = torch.atan2(x[:, 1], x[:, 0]) / (math.pi / 4)
    assert (angles - angles.round()).abs().max() < 0.2  # every point near one of the eight directions


def test_mmd_separates_modes_from_a_blur():
    g = torch.Generator().manual_seed(1)
    data, data2 = eight_gaussians(1000, g).double(), eight_gaussians(1000, g).double()
    blur = data2 + 0.3 * torch.randn(1000, 2, generator=g, dtype=torch.float64)
    assert abs(mmd_rbf(data, data2, 0.1)) < 0.01 < mmd_rbf(data, blur, 0.1)

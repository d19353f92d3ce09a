"""Hook points of the toy models: the cache equals forward, holds the documented names and shapes, and its values
are the quantities the docstrings name (h = W x per instance); zeroing a hook changes the output."""

import sys
from pathlib import Path

import pytest
import torch

from mlreads.superposition import AbsConfig, AbsModel, ToyConfig, ToyModel

sys.path.insert(0, str(Path(__file__).parents[1]))
from hook_checks import (
    assert_ablation_changes_output,
    assert_names_and_shapes,
    cache_matching_forward,
)


def _gen(seed=0):
    return torch.Generator().manual_seed(seed)


@pytest.mark.parametrize("kind", ["linear", "relu", "hidden_relu"])
def test_toy_model_cache(kind):
    model = ToyModel(ToyConfig(n_features=5, d_hidden=2, n_instances=3, kind=kind), _gen(0))
    with torch.no_grad():
        model.b.normal_(generator=_gen(3))
    x = model.sample(8, _gen(1))  # (B, I, F)
    cache = cache_matching_forward(model, x)
    assert_names_and_shapes(cache, {"hook_hidden": (8, 3, 2), "hook_out": (8, 3, 5)})
    i = 1  # one instance, computed on its own: h = W_i x_i
    h = x[:, i] @ model.W[i].detach().T  # (B, m)
    torch.testing.assert_close(cache["hook_hidden"][:, i], h.relu() if kind == "hidden_relu" else h)
    assert_ablation_changes_output(model, "hook_hidden", x)


def test_abs_model_cache():
    model = AbsModel(AbsConfig(n_features=5, d_hidden=4, n_instances=3), _gen(0))
    x = model.sample(8, _gen(1))
    cache = cache_matching_forward(model, x)
    assert_names_and_shapes(cache, {"hook_hidden": (8, 3, 4), "hook_out": (8, 3, 5)})
    i = 2
    torch.testing.assert_close(cache["hook_hidden"][:, i], (x[:, i] @ model.W_in[i].detach().T).relu())
    assert_ablation_changes_output(model, "hook_hidden", x)

"""Hook points of the batched students and MLPs: the cache equals forward, holds the documented names and shapes,
one net's hidden layer equals the same net computed on its own; zeroing a hook changes the logits."""

import sys
from pathlib import Path

import torch

from mlreads.dl_review.model import ManyMLPs, Students

sys.path.insert(0, str(Path(__file__).parents[1]))
from hook_checks import (
    assert_ablation_changes_output,
    assert_names_and_shapes,
    cache_matching_forward,
)


def _x(*shape):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(1))


def test_students_cache():
    torch.manual_seed(0)
    model, x = Students(5, d_hidden=3), _x(7, 2)
    cache = cache_matching_forward(model, x)
    assert_names_and_shapes(cache, {"hook_hidden": (5, 7, 3), "hook_logits": (5, 7)})
    s = 2  # student s alone: y = tanh(x W1_s + b1_s)
    torch.testing.assert_close(cache["hook_hidden"][s], torch.tanh(x @ model.W1[s].detach() + model.b1[s].detach()))
    assert_ablation_changes_output(model, "hook_hidden", x)


def test_many_mlps_cache():
    torch.manual_seed(0)
    model, x = ManyMLPs(3, 4, 6, 2), _x(7, 4)
    cache = cache_matching_forward(model, x)
    assert_names_and_shapes(cache, {"hook_hidden": (3, 7, 6), "hook_logits": (3, 7, 2)})
    s = 1
    h = torch.relu(x @ model.W1[s].detach() + model.b1[s].detach())
    torch.testing.assert_close(cache["hook_hidden"][s], h)
    torch.testing.assert_close(cache["hook_logits"][s], h @ model.W2[s].detach() + model.b2[s].detach())
    assert_ablation_changes_output(model, "hook_hidden", x)

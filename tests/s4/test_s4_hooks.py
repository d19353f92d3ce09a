"""Hook points of the S4 sequence classifier: the cache equals forward, holds the documented names and shapes, its
values are the quantities they name (the residual stream chains block to block; the cached features equal the
recurrent mode's); zeroing a hook changes the logits."""

import sys
from pathlib import Path

import pytest
import torch

from mlreads.s4.model import S4Config, SequenceClassifier

sys.path.insert(0, str(Path(__file__).parents[1]))
from hook_checks import (
    assert_ablation_changes_output,
    assert_names_and_shapes,
    cache_matching_forward,
)


@pytest.mark.parametrize("kernel", ["s4d", "s4", "dense"])
def test_sequence_classifier_cache(kernel):
    model = SequenceClassifier(S4Config(d_model=8, d_state=8, n_layers=2, kernel=kernel),
                               torch.Generator().manual_seed(0)).eval()  # fmt: skip
    x = torch.rand(2, 10, 1, generator=torch.Generator().manual_seed(1))
    cache = cache_matching_forward(model, x)
    expected = {"hook_embed": (2, 10, 8), "hook_features": (2, 10, 8), "hook_logits": (2, 10)}
    for layer in range(2):
        expected |= {f"blocks.{layer}.hook_{h}": (2, 10, 8) for h in ("resid_pre", "ssm_out", "resid_post")}
    assert_names_and_shapes(cache, expected)
    with torch.no_grad():
        torch.testing.assert_close(cache["hook_embed"], model.encoder(x), rtol=0, atol=0)
        torch.testing.assert_close(cache["hook_features"], model.features_recurrent(x), rtol=1e-3, atol=1e-4)
    torch.testing.assert_close(cache["blocks.0.hook_resid_pre"], cache["hook_embed"], rtol=0, atol=0)
    torch.testing.assert_close(cache["blocks.1.hook_resid_pre"], cache["blocks.0.hook_resid_post"], rtol=0, atol=0)
    assert_ablation_changes_output(model, "blocks.1.hook_ssm_out", x)

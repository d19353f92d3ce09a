"""Hook points of DropoutMLP and the autoencoder: the cache equals forward, holds the documented names and shapes,
its values are the quantities they name (a dropped activation is r * y: y or 0; p * y when scaling); zeroing a hook
changes the output."""

import sys
from pathlib import Path

import torch
import torch.nn.functional as F

from mlreads.dropout.model import Autoencoder, DropoutMLP, MLPConfig

sys.path.insert(0, str(Path(__file__).parents[1]))
from hook_checks import (
    assert_ablation_changes_output,
    assert_names_and_shapes,
    cache_matching_forward,
)

CFG = MLPConfig(d_in=10, d_hidden=(8, 6), d_out=3, p_keep_input=0.8, p_keep_hidden=0.5)


def _gen(seed=1):
    return torch.Generator().manual_seed(seed)


def test_dropout_mlp_cache():
    torch.manual_seed(0)
    model, x = DropoutMLP(CFG).eval(), torch.randn(4, 10, generator=_gen())
    cache = cache_matching_forward(model, x)  # eval: the weight-scaled net
    assert_names_and_shapes(cache, {"hook_in": (4, 10), "layers.0.hook_post": (4, 8), "layers.0.hook_dropped": (4, 8),
                                    "layers.1.hook_post": (4, 6), "layers.1.hook_dropped": (4, 6),
                                    "hook_logits": (4, 3)})  # fmt: skip
    torch.testing.assert_close(cache["hook_in"], x * 0.8, rtol=0, atol=0)
    with torch.no_grad():
        torch.testing.assert_close(cache["layers.0.hook_post"], F.relu(model.layers[0](x * 0.8)), rtol=0, atol=0)
        _, acts = model.run(x)
    torch.testing.assert_close(cache["layers.1.hook_post"], acts[1], rtol=0, atol=0)
    torch.testing.assert_close(cache["layers.1.hook_dropped"], acts[1] * 0.5, rtol=0, atol=0)
    assert_ablation_changes_output(model, "layers.0.hook_dropped", x)


def test_dropout_mlp_cache_of_a_thinned_net():
    torch.manual_seed(0)
    model, x = DropoutMLP(CFG).eval(), torch.randn(64, 10, generator=_gen())
    out, cache = model.run_with_cache(x, mode="mc", generator=_gen(5))
    torch.testing.assert_close(out, model(x, mode="mc", generator=_gen(5)), rtol=0, atol=0)
    post, dropped = cache["layers.0.hook_post"], cache["layers.0.hook_dropped"]
    kept = dropped != 0
    torch.testing.assert_close(dropped[kept], post[kept], rtol=0, atol=0)  # r * y with r in {0, 1}
    assert 0 < (kept & (post != 0)).sum() < (post != 0).sum()  # some live units were dropped, some kept


def test_autoencoder_cache():
    torch.manual_seed(0)
    model, x = Autoencoder(10, 6, p_keep=0.5).eval(), torch.rand(4, 10, generator=_gen())
    cache = cache_matching_forward(model, x)
    assert_names_and_shapes(cache, {"hook_code": (4, 6), "hook_dropped": (4, 6), "hook_out": (4, 10)})
    with torch.no_grad():
        torch.testing.assert_close(cache["hook_code"], F.relu(model.enc(x)), rtol=0, atol=0)
    torch.testing.assert_close(cache["hook_dropped"], cache["hook_code"] * 0.5, rtol=0, atol=0)
    assert_ablation_changes_output(model, "hook_code", x)

"""Hook points of the GAN's generator and discriminator, the DDPM denoiser and the feature net: the cache equals
forward, holds the documented names and shapes, its values are the quantities they name; zeroing a hook changes
the output."""

import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from mlreads.generative.ddpm import DenoiserConfig, MLPDenoiser, timestep_embedding
from mlreads.generative.featnet import FeatNet, FeatNetConfig
from mlreads.generative.gan import GAN, GANConfig

sys.path.insert(0, str(Path(__file__).parents[1]))
from hook_checks import (
    assert_ablation_changes_output,
    assert_names_and_shapes,
    cache_matching_forward,
)


def _gen(seed=1):
    return torch.Generator().manual_seed(seed)


@pytest.mark.parametrize("disc_kind", ["maxout", "mlp"])
def test_gan_generator_and_discriminator_caches(disc_kind):
    torch.manual_seed(0)
    model = GAN(GANConfig(d_data=12, d_z=5, d_gen=(16, 10), d_disc=(8, 6), n_pieces=3, disc_kind=disc_kind)).eval()
    z = torch.randn(4, 5, generator=_gen())
    cache = cache_matching_forward(model.gen, z)
    assert_names_and_shapes(cache, {"hidden.0.hook_post": (4, 16), "hidden.1.hook_post": (4, 10), "hook_out": (4, 12)})
    with torch.no_grad():
        torch.testing.assert_close(cache["hidden.0.hook_post"], F.relu(model.gen.hidden[0](z)), rtol=0, atol=0)
    assert_ablation_changes_output(model.gen, "hidden.1.hook_post", z)

    x = cache["hook_out"]
    cache = cache_matching_forward(model.disc, x)
    assert_names_and_shapes(cache, {"hidden.0.hook_post": (4, 8), "hidden.1.hook_post": (4, 6), "hook_logit": (4,)})
    with torch.no_grad():  # eval mode: dropout is the identity
        torch.testing.assert_close(cache["hook_logit"], model.disc.out(cache["hidden.1.hook_post"]).squeeze(-1))
    assert_ablation_changes_output(model.disc, "hidden.0.hook_post", x)


def test_ddpm_denoiser_cache():
    torch.manual_seed(0)
    model = MLPDenoiser(DenoiserConfig(d_data=2, d_hidden=16, n_layers=3, d_time=8))
    x, t = torch.randn(4, 2, generator=_gen()), torch.tensor([1, 10, 100, 999])
    cache = cache_matching_forward(model, x, t)
    assert_names_and_shapes(cache, {"hook_time": (4, 16), "inp.hook_post": (4, 16), "hidden.0.hook_post": (4, 16),
                                    "hidden.1.hook_post": (4, 16), "hook_out": (4, 2)})  # fmt: skip
    with torch.no_grad():
        torch.testing.assert_close(cache["hook_time"], model.time(timestep_embedding(t, 8)), rtol=0, atol=0)
        torch.testing.assert_close(cache["inp.hook_post"], F.silu(model.inp(x) + cache["hook_time"]), rtol=0, atol=0)
    assert_ablation_changes_output(model, "hook_time", x, t)


def test_featnet_cache():
    torch.manual_seed(0)
    model, x = FeatNet(FeatNetConfig(d_hidden=32)), torch.rand(3, 784, generator=_gen())
    cache = cache_matching_forward(model, x)
    assert_names_and_shapes(cache, {"hook_fc1": (3, 32), "hook_fc2": (3, 32), "hook_logits": (3, 10)})
    with torch.no_grad():
        torch.testing.assert_close(cache["hook_fc2"], model.features(x), rtol=0, atol=0)
        torch.testing.assert_close(cache["hook_fc1"], F.relu(model.fc1(x)), rtol=0, atol=0)
    assert_ablation_changes_output(model, "hook_fc2", x)

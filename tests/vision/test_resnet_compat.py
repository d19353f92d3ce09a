"""`ResNet.from_hf` reads or refuses every field of transformers' ResNetConfig.

Each supported field: logits (or pooled features) against transformers on random weights with randomised BN
statistics, max |difference| <= 1e-5 in float32, and parameter gradients in training mode (BN on batch statistics).
"""

import pytest
import torch

from mlreads.core.nn.activations import ACTIVATIONS
from mlreads.vision import ResNet, n_params
from mlreads.vision.hf import hf_state_dict_to_ours

transformers = pytest.importorskip("transformers")

TINY = {"embedding_size": 8, "hidden_sizes": [8, 16, 24], "depths": [1, 2, 1], "layer_type": "basic", "num_labels": 5}


def hf_resnet(cls="ResNetForImageClassification", seed=0, **overrides):
    cfg = transformers.ResNetConfig(**{**TINY, **overrides})
    torch.manual_seed(seed)
    model = getattr(transformers, cls)(cfg).eval()
    g = torch.Generator().manual_seed(seed + 1)
    for m in model.modules():  # BN away from the identity, so a wrong mapping shows
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.copy_(torch.randn(m.num_features, generator=g) * 0.3)
            m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            m.weight.data.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            m.bias.data.copy_(torch.randn(m.num_features, generator=g) * 0.5)
    return model


def images(b=3, size=32, seed=2):
    return torch.randn(b, 3, size, size, generator=torch.Generator().manual_seed(seed))


def hf_out(hf, x):
    out = hf(pixel_values=x)
    return out.logits if hasattr(out, "logits") else out.pooler_output.flatten(1)


def assert_parity(hf, ours, x=None):
    x = images() if x is None else x
    with torch.no_grad():
        want, got = hf_out(hf, x), ours(x)
    assert want.shape == got.shape and want.std() > 0.1  # large enough for a wrong mapping to show
    assert float((got - want).abs().max()) <= 1e-5


def assert_gradients_match(hf, ours, x=None):
    """Training mode (BN on batch statistics): the same loss gives the same gradient on every parameter."""
    x = images(4) if x is None else x
    hf.train(), ours.train()
    hf.zero_grad(), ours.zero_grad()
    want = hf_out(hf, x)
    w = torch.randn(want.shape, generator=torch.Generator().manual_seed(7))
    (want * w).sum().backward()
    got = ours(x)
    (got * w).sum().backward()
    assert float((got - want).detach().abs().max()) <= 1e-5
    prefix = "resnet." if hasattr(hf, "resnet") else ""
    theirs = hf_state_dict_to_ours({k: p.grad for k, p in hf.named_parameters()}, prefix)
    mine = dict(ours.named_parameters())
    assert set(theirs) == set(mine)
    for name, g in theirs.items():
        assert float((mine[name].grad - g).abs().max()) <= 1e-5 * max(1.0, float(g.abs().max())), name


VARIANTS = {
    "basic": {},
    "bottleneck": {"layer_type": "bottleneck", "hidden_sizes": [16, 32, 48]},
    "downsample_in_bottleneck": {"layer_type": "bottleneck", "hidden_sizes": [16, 32, 48],
                                 "downsample_in_bottleneck": True},
    # issue 29: converted silently with stride 1 for basic layers (logits off by up to 0.092)
    "downsample_in_first_stage_basic": {"downsample_in_first_stage": True},
    "downsample_in_first_stage_bottleneck": {"layer_type": "bottleneck", "hidden_sizes": [16, 32, 48],
                                             "downsample_in_first_stage": True},
    "downsample_in_first_stage_and_bottleneck": {"layer_type": "bottleneck", "hidden_sizes": [16, 32, 48],
                                                 "downsample_in_first_stage": True, "downsample_in_bottleneck": True},
    "num_channels": {"num_channels": 1},
    "embedding_size_equals_first_width": {"embedding_size": 8, "hidden_sizes": [8, 8, 16]},  # identity shortcuts
    "out_features": {"out_features": ["stage1", "stage2"]},  # ResNetBackbone's switches: no effect on the logits
    "hidden_act_gelu_with_all_of_the_above": {"layer_type": "bottleneck", "hidden_sizes": [16, 32, 48],
                                              "downsample_in_first_stage": True, "hidden_act": "gelu",
                                              "out_indices": [1, 3]},
}  # fmt: skip


@pytest.mark.parametrize("overrides", list(VARIANTS.values()), ids=list(VARIANTS))
def test_config_variants_match_hf(overrides):
    """Logits in eval mode and gradients in training mode, with the fields read into our config."""
    hf = hf_resnet(**overrides)
    ours, channels = ResNet.from_hf(hf).eval(), hf.config.num_channels
    assert (ours.cfg.downsample_first_stage, ours.cfg.act_fn, ours.cfg.stride_in_1x1, ours.cfg.in_channels) == (
        hf.config.downsample_in_first_stage, hf.config.hidden_act, hf.config.downsample_in_bottleneck, channels)
    assert n_params(ours) == n_params(hf)
    assert_parity(hf, ours, images(3, 32, seed=4)[:, :channels])
    assert_gradients_match(hf, ours, images(4, 32, seed=5)[:, :channels])


@pytest.mark.parametrize("act", sorted(ACTIVATIONS))
def test_every_supported_hidden_act_matches_hf(act):
    hf = hf_resnet(hidden_act=act)
    assert_parity(hf, ResNet.from_hf(hf).eval())


@pytest.mark.parametrize("act", ["gelu", "leaky_relu"])
def test_hidden_act_matters_so_the_parity_test_can_fail(act):
    """Issue 29: with hidden_act ignored (ReLU everywhere), gelu and leaky_relu models are off far above 1e-5."""
    hf = hf_resnet(hidden_act=act)
    relu_everywhere = hf_resnet(hidden_act="relu")
    relu_everywhere.load_state_dict(hf.state_dict())
    x = images()
    with torch.no_grad():
        assert float((hf(pixel_values=x).logits - relu_everywhere(pixel_values=x).logits).abs().max()) > 1e-3


def test_activations_inside_blocks_stay_relu_as_in_transformers():
    hf = hf_resnet(hidden_act="tanh")
    inner = [m.activation for m in hf.modules() if type(m).__name__ == "ResNetConvLayer"]
    assert any(isinstance(a, torch.nn.ReLU) for a in inner)  # transformers' own choice, which we mirror
    ours = ResNet.from_hf(hf).eval()
    assert ours.stages[0][0].act is torch.tanh and ours.stem_act is torch.tanh
    assert_parity(hf, ours)


@pytest.mark.parametrize("kind", ["ResNetModel", "num_labels=0"])
def test_headless_models_give_the_pooled_features(kind):
    hf = hf_resnet("ResNetModel") if kind == "ResNetModel" else hf_resnet(num_labels=0)
    ours = ResNet.from_hf(hf).eval()
    assert ours.cfg.n_classes == 0 and isinstance(ours.fc, torch.nn.Identity)
    assert_parity(hf, ours)
    assert ours(images()).shape == (3, TINY["hidden_sizes"][-1])
    assert_gradients_match(hf, ours)


@pytest.mark.parametrize("cls", ["ResNetForImageClassification", "ResNetModel"])
def test_save_pretrained_folder_round_trip(cls, tmp_path):
    hf = hf_resnet(cls, hidden_act="silu")
    hf.save_pretrained(tmp_path)
    ours = ResNet.from_hf(str(tmp_path)).eval()  # the folder's `architectures` picks the class: no random head
    assert_parity(hf, ours)


def test_float64_model_gives_a_float64_resnet():
    hf = hf_resnet(hidden_act="gelu").double()
    ours = ResNet.from_hf(hf).eval()
    assert next(ours.parameters()).dtype == torch.float64
    x = images().double()
    with torch.no_grad():
        assert float((ours(x) - hf(pixel_values=x).logits).abs().max()) <= 1e-12


def test_refused_models_and_fields_say_so_in_one_line():
    refused = {"ResNetBackbone": transformers.ResNetBackbone(transformers.ResNetConfig(**TINY)),
               "GPT2LMHeadModel": transformers.GPT2LMHeadModel(transformers.GPT2Config(n_layer=1, n_embd=8, n_head=2,
                                                                                       vocab_size=11)),
               "never downloads": "microsoft/resnet-50"}  # fmt: skip
    for act in ("prelu", "xielu", "no_such_activation"):
        refused[f"hidden_act='{act}'"] = hf_resnet()
        refused[f"hidden_act='{act}'"].config.hidden_act = act
    for message, source in refused.items():
        with pytest.raises(ValueError, match=message) as e:
            ResNet.from_hf(source)
        assert "\n" not in str(e.value)

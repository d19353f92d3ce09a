"""Hook points of ResNet, AlexNet and SmallConvNet: the cache equals forward, holds the documented names and shapes
(ResNet blocks at stages.{s}.blocks.{b}), its values are the quantities they name (the first block's input is the
stem's output; a block's output is relu(F(x) + shortcut(x))); zeroing a hook changes the logits; state_dict keys
keep their checkpoint names."""

import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from mlreads.vision.alexnet import (
    AlexNet,
    AlexNetConfig,
    SmallConvNet,
    SmallConvNetConfig,
)
from mlreads.vision.resnet import ResNet, ResNetConfig, shortcut_a

sys.path.insert(0, str(Path(__file__).parents[1]))
from hook_checks import (
    assert_ablation_changes_output,
    assert_names_and_shapes,
    cache_matching_forward,
)


def _x(*shape):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(1))


@pytest.mark.parametrize("residual", [True, False], ids=["resnet", "plain"])
def test_resnet_cache(residual):
    torch.manual_seed(0)
    model, x = ResNet(ResNetConfig.cifar(1, residual=residual, width=4)).eval(), _x(2, 3, 32, 32)
    cache = cache_matching_forward(model, x)
    expected = {"hook_stem": (2, 4, 32, 32), "hook_pooled": (2, 16), "hook_logits": (2, 10)}
    for s, (c, side) in enumerate([(4, 32), (8, 16), (16, 8)]):
        names = ["residual", "out"] + (["shortcut"] if residual else [])
        expected |= {f"stages.{s}.blocks.0.hook_{n}": (2, c, side, side) for n in names}
    assert_names_and_shapes(cache, expected)
    with torch.no_grad():
        stem = F.relu(model.stem_bn(model.stem_conv(x)))
    torch.testing.assert_close(cache["hook_stem"], stem, rtol=0, atol=0)
    branch = cache["stages.1.blocks.0.hook_residual"]
    if residual:  # the first block's input is the stem's output (its shortcut is the identity)
        torch.testing.assert_close(cache["stages.0.blocks.0.hook_shortcut"], stem, rtol=0, atol=0)
        torch.testing.assert_close(cache["stages.1.blocks.0.hook_shortcut"],
                                   shortcut_a(cache["stages.0.blocks.0.hook_out"], 8, 2), rtol=0, atol=0)
        branch = branch + cache["stages.1.blocks.0.hook_shortcut"]
    torch.testing.assert_close(cache["stages.1.blocks.0.hook_out"], F.relu(branch), rtol=0, atol=0)
    torch.testing.assert_close(cache["hook_pooled"], cache["stages.2.blocks.0.hook_out"].mean(dim=(2, 3)))
    assert_ablation_changes_output(model, "stages.1.blocks.0.hook_residual", x)
    assert "stages.1.0.conv1.weight" in model.state_dict()


def test_resnet_bottleneck_names():
    torch.manual_seed(0)
    cfg = ResNetConfig(stem="imagenet", block="bottleneck", depths=(1, 2), widths=(16, 32), d_stem=8, shortcut="B",
                       n_classes=5)  # fmt: skip
    cache = cache_matching_forward(ResNet(cfg).eval(), _x(2, 3, 32, 32))
    expected = {"hook_stem": (2, 8, 8, 8), "hook_pooled": (2, 32), "hook_logits": (2, 5)}
    for s, b, c, side in [(0, 0, 16, 8), (1, 0, 32, 4), (1, 1, 32, 4)]:
        expected |= {f"stages.{s}.blocks.{b}.hook_{n}": (2, c, side, side) for n in ("residual", "shortcut", "out")}
    assert_names_and_shapes(cache, expected)


@pytest.mark.parametrize("dropout_first", [False, True])
def test_alexnet_cache(dropout_first):
    torch.manual_seed(0)
    cfg = AlexNetConfig.mnist(scale=16, d_fc=32, dropout_first=dropout_first)
    model, x = AlexNet(cfg).eval(), _x(2, 1, 28, 28)
    cache = cache_matching_forward(model, x)
    sides = cfg.spatial_sizes()  # after conv1, pool1, conv2, pool2, conv3, conv4, conv5, pool5
    expected = {f"hook_conv{k + 1}": (2, cfg.widths[k], side, side) for k, side in enumerate(
        [sides[0], sides[2], sides[4], sides[5], sides[6]])}  # fmt: skip
    expected |= {"hook_fc6": (2, 32), "hook_fc7": (2, 32), "hook_logits": (2, 10)}
    assert_names_and_shapes(cache, expected)
    with torch.no_grad():
        torch.testing.assert_close(cache["hook_conv1"], F.relu(model.conv1(x)), rtol=0, atol=0)
        torch.testing.assert_close(cache["hook_fc7"], model.features(x), rtol=0, atol=0)
    assert_ablation_changes_output(model, "hook_conv3", x)
    assert "body.0.weight" in model.state_dict() and "conv1.weight" in model.state_dict()


def test_small_convnet_cache():
    torch.manual_seed(0)
    model, x = SmallConvNet(SmallConvNetConfig(activation="tanh")), _x(2, 1, 28, 28)
    cache = cache_matching_forward(model, x)
    assert_names_and_shapes(cache, {"hook_conv1": (2, 16, 28, 28), "hook_conv2": (2, 16, 13, 13),
                                    "hook_conv3": (2, 32, 6, 6), "hook_logits": (2, 10)})  # fmt: skip
    with torch.no_grad():
        torch.testing.assert_close(cache["hook_conv1"], torch.tanh(model.body[0](x)), rtol=0, atol=0)
    assert_ablation_changes_output(model, "hook_conv2", x)

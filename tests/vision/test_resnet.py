"""ResNet: parity with HF transformers on the same weights, the paper's parameter counts, option A, plain twin."""

import pytest
import torch

from mlreads.vision import ResNet, ResNetConfig, n_params, response_stds, shortcut_a
from mlreads.vision.resnet import BasicBlock


@pytest.mark.parametrize("n_layers,count", [(18, 11_689_512), (34, 21_797_672), (50, 25_557_032)])
def test_imagenet_parameter_counts(n_layers, count):
    assert n_params(ResNet(ResNetConfig.imagenet(n_layers))) == count


def test_cifar_resnet20_count_and_depth():
    cfg = ResNetConfig.cifar(3)
    assert cfg.n_layers == 20 and n_params(ResNet(cfg)) == 269_722  # Table 6: 0.27M
    assert ResNetConfig.cifar(9).n_layers == 56 and round(n_params(ResNet(ResNetConfig.cifar(9))) / 1e6, 2) == 0.85


def _randomise_bn(model, seed):
    g = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.copy_(torch.randn(m.num_features, generator=g) * 0.1)
            m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            m.weight.data.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            m.bias.data.copy_(torch.randn(m.num_features, generator=g) * 0.1)


@pytest.mark.parametrize(
    "layer_type,depths,hidden,in_bottleneck",
    [("basic", [2, 2, 2, 2], [64, 128, 256, 512], False),  # ResNet-18 itself
     ("bottleneck", [1, 2, 1, 1], [32, 64, 128, 256], False),  # v1.5 stride placement (torchvision)
     ("bottleneck", [1, 2, 1, 1], [32, 64, 128, 256], True)],  # the paper's / Caffe v1 stride in the first 1x1
)  # fmt: skip
def test_forward_logits_match_hf(layer_type, depths, hidden, in_bottleneck):
    transformers = pytest.importorskip("transformers")
    torch.manual_seed(0)
    hf_cfg = transformers.ResNetConfig(layer_type=layer_type, depths=depths, hidden_sizes=hidden, embedding_size=64,
                                       num_labels=7, downsample_in_bottleneck=in_bottleneck)  # fmt: skip
    hf = transformers.ResNetForImageClassification(hf_cfg).eval()
    _randomise_bn(hf, 1)
    ours = ResNet.from_hf(hf).eval()
    assert n_params(ours) == n_params(hf)
    x = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        torch.testing.assert_close(ours(x), hf(pixel_values=x).logits, rtol=1e-5, atol=1e-5)


def test_option_a_shortcut_is_identity_with_zero_channels():
    x = torch.randn(2, 3, 6, 6, generator=torch.Generator().manual_seed(3))
    y = shortcut_a(x, 5, 2)
    assert y.shape == (2, 5, 3, 3)
    torch.testing.assert_close(y[:, :3], x[:, :, ::2, ::2])
    assert y[:, 3:].eq(0).all()
    assert n_params(ResNet(ResNetConfig.cifar(1))) == n_params(ResNet(ResNetConfig.cifar(1, residual=False)))


def test_residual_block_adds_input_plain_twin_does_not():
    cfg = ResNetConfig.cifar(1)
    blk = BasicBlock(4, 4, 1, cfg).eval()
    plain = BasicBlock(4, 4, 1, ResNetConfig.cifar(1, residual=False)).eval()
    plain.load_state_dict(blk.state_dict())
    for m in (blk.conv2, plain.conv2):
        torch.nn.init.zeros_(m.weight)  # F(x) = 0: the residual block is relu(x), the plain one is relu(0) = 0
    x = torch.randn(2, 4, 5, 5, generator=torch.Generator().manual_seed(4))
    with torch.no_grad():
        torch.testing.assert_close(blk(x), torch.relu(x))
        assert plain(x).abs().max() < 1e-6 + plain.bn2.bias.abs().max()


def test_response_stds_one_per_3x3_layer():
    model = ResNet(ResNetConfig.cifar(2, in_channels=1)).eval()
    stds = response_stds(model, torch.randn(4, 1, 12, 12))
    assert len(stds) == 2 * 3 * 2 and all(s > 0 for s in stds)


def test_response_std_is_per_channel_and_ignores_channel_offsets():
    from mlreads.vision.resnet import channel_std

    g = torch.Generator().manual_seed(0)
    out = torch.randn(64, 3, 5, 5, generator=g) * torch.tensor([1.0, 2.0, 3.0]).view(1, 3, 1, 1)
    shifted = out + torch.tensor([10.0, -5.0, 0.0]).view(1, 3, 1, 1)  # BN's beta: offsets, not response
    assert channel_std(shifted) == pytest.approx(channel_std(out), rel=1e-5)
    assert channel_std(out) == pytest.approx(((1 + 4 + 9) / 3) ** 0.5, rel=0.05)

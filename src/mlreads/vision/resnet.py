"""ResNet: He, Zhang, Ren & Sun, "Deep Residual Learning for Image Recognition", CVPR 2016 (arXiv 1512.03385).

Section 3.2 (Eq 1): y = F(x, {W_i}) + x, with F two 3x3 conv layers (the basic block) or 1x1-3x3-1x1 (the
bottleneck of Section 4.1, "Deeper Bottleneck Architectures"). Section 3.3: BN after each convolution and before
the activation; when the dimensions increase, (A) the shortcut is the identity with zero padding for the extra
channels (parameter-free), or (B) a 1x1 projection (Eq 2: y = F(x) + W_s x). The plain twin is the same stack
without the shortcuts. Table 1: the ImageNet 18/34/50 layouts; Section 4.2: the CIFAR 6n+2 family
(3x3 convs on {32, 16, 8} maps with {16, 32, 64} filters, global average pooling, a 10-way fc).

Glossary (code -> paper):
    residual        True: Eq 1 (ResNet); False: the "plain" net of Section 4.1
    shortcut "A"    Section 3.3 option A: identity, stride-2 subsampling, zero-padded channels (used for CIFAR)
    shortcut "B"    option B: projection (1x1 conv + BN) only where the dimensions change (used for ImageNet)
    depths          blocks per stage (n per stage for CIFAR; [2,2,2,2] for ResNet-18)
    widths          output channels per stage (for the bottleneck, the expanded 4x width, as in Table 1's 256...)
    d_stem          channels of the first convolution (16 CIFAR, 64 ImageNet)
    stride_in_1x1   the original (Caffe v1) bottleneck puts stride 2 in the first 1x1; False (torchvision, "v1.5")
                    puts it in the 3x3
    responses       Fig 7's "responses": each 3x3 conv's output after BN, before the nonlinearity
    act_fn          the stem's activation and the one after each residual sum (ReLU in the paper; any parameter-free
                    name of transformers' ACT2FN, its `hidden_act`); the activations inside a block stay ReLU, as in
                    transformers' ResNet, which applies `hidden_act` at exactly those two places
    downsample_first_stage   the first stage's first block strides by 2 too (transformers' downsample_in_first_stage;
                    not in Table 1, where the max pool does that halving)
    n_classes = 0   headless: `forward` returns the pooled features (B, widths[-1]), transformers' pooler_output

Parameter counts (tested): ResNet-18 11,689,512, ResNet-34 21,797,672, ResNet-50 25,557,032; CIFAR ResNet-20 269,722.

Deviations:
- Init: He et al. 2015 normal (fan_out, as Caffe's "msra" filler used by the authors' released models), BN gamma 1.
- Fig 7 reads responses of every 3x3 layer (each BN output inside the blocks); the paper plots the same quantity.

`ResNet.from_hf` converts a transformers `ResNetForImageClassification` or `ResNetModel` (mlreads/vision/hf.py says
which config field maps where and which are refused).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from mlreads.core.nn.activations import activation
from mlreads.core.nn.hooks import HookedModule, HookPoint


@dataclass(frozen=True)
class ResNetConfig:
    stem: Literal["cifar", "imagenet"] = "cifar"
    block: Literal["basic", "bottleneck"] = "basic"
    depths: tuple[int, ...] = (3, 3, 3)  # blocks per stage: n = 3 gives ResNet-20
    widths: tuple[int, ...] = (16, 32, 64)  # output channels per stage
    d_stem: int = 16
    shortcut: Literal["A", "B"] = "A"
    residual: bool = True  # False: the plain twin
    in_channels: int = 3
    n_classes: int = 10
    stride_in_1x1: bool = False  # bottleneck only
    act_fn: str = "relu"  # stem and post-sum activation, a name in core.nn.activations.ACTIVATIONS (HF: hidden_act)
    downsample_first_stage: bool = False  # stride 2 in stage 0's first block (HF: downsample_in_first_stage)

    @classmethod
    def cifar(cls, n: int, residual: bool = True, width: int = 16, **kw) -> ResNetConfig:
        """Section 4.2's 6n+2-layer net: three stages of n basic blocks with {w, 2w, 4w} filters, option A."""
        return cls(stem="cifar", block="basic", depths=(n, n, n), widths=(width, 2 * width, 4 * width),
                   d_stem=width, shortcut="A", residual=residual, **kw)  # fmt: skip

    @classmethod
    def imagenet(cls, n_layers: int, residual: bool = True, **kw) -> ResNetConfig:
        """Table 1's 18/34/50-layer nets with option-B shortcuts, as HF transformers and torchvision build them."""
        depths = {18: (2, 2, 2, 2), 34: (3, 4, 6, 3), 50: (3, 4, 6, 3)}[n_layers]
        block = "bottleneck" if n_layers >= 50 else "basic"
        widths = (256, 512, 1024, 2048) if block == "bottleneck" else (64, 128, 256, 512)
        kw = {"in_channels": 3, "n_classes": 1000, **kw}
        return cls(stem="imagenet", block=block, depths=depths, widths=widths, d_stem=64, shortcut="B",
                   residual=residual, **kw)  # fmt: skip

    @property
    def n_layers(self) -> int:
        """Weighted layers: the stem conv, 2 or 3 per block, and the fc (shortcuts not counted, as in the paper)."""
        return 1 + (2 if self.block == "basic" else 3) * sum(self.depths) + 1


def shortcut_a(x: Tensor, d_out: int, stride: int) -> Tensor:
    """Section 3.3 option (A): identity, subsampled by `stride`, with zero channels appended up to d_out."""
    if stride > 1:
        x = x[:, :, ::stride, ::stride]  # (B, C, H/s, W/s)
    pad = d_out - x.shape[1]
    return F.pad(x, (0, 0, 0, 0, 0, pad)) if pad else x  # (B, d_out, H/s, W/s)


class ShortcutA(nn.Module):
    def __init__(self, d_out: int, stride: int):
        super().__init__()
        self.d_out, self.stride = d_out, stride

    def forward(self, x: Tensor) -> Tensor:
        return shortcut_a(x, self.d_out, self.stride)


class Projection(nn.Module):
    """Section 3.3 option (B), Eq 2's W_s: a 1x1 convolution with the block's stride, then BN."""

    def __init__(self, d_in: int, d_out: int, stride: int):
        super().__init__()
        self.conv = nn.Conv2d(d_in, d_out, 1, stride, bias=False)
        self.bn = nn.BatchNorm2d(d_out)

    def forward(self, x: Tensor) -> Tensor:
        return self.bn(self.conv(x))


def _shortcut(kind: str, d_in: int, d_out: int, stride: int) -> nn.Module:
    if d_in == d_out and stride == 1:
        return nn.Identity()
    return ShortcutA(d_out, stride) if kind == "A" else Projection(d_in, d_out, stride)


class _Block(nn.Module):
    """What the basic and the bottleneck block share: Eq 1's sum with the shortcut, the final activation, the hook points."""

    shortcut: nn.Module | None

    def _init_hooks(self, cfg: ResNetConfig) -> None:
        self.act = activation(cfg.act_fn)  # after the sum; the activations inside the block are ReLU (as transformers)
        self.hook_residual, self.hook_out = HookPoint(), HookPoint()  # F(x) and the block's output
        if self.shortcut is not None:
            self.hook_shortcut = HookPoint()

    def _add_shortcut(self, h: Tensor, x: Tensor) -> Tensor:
        """act(F(x) + shortcut(x)) (Eq 1, act = ReLU in the paper), or act(F(x)) for the plain twin. h = F(x), x the
        block's input."""
        h = self.hook_residual(h)
        if self.shortcut is not None:
            h = h + self.hook_shortcut(self.shortcut(x))  # Eq 1
        return self.hook_out(self.act(h))


class BasicBlock(_Block):
    """Fig 2 / Eq 1: relu(BN(conv3x3(relu(BN(conv3x3(x))))) + shortcut(x)); the plain twin drops "+ shortcut(x)"."""

    def __init__(self, d_in: int, d_out: int, stride: int, cfg: ResNetConfig):
        super().__init__()
        self.conv1 = nn.Conv2d(d_in, d_out, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(d_out)
        self.conv2 = nn.Conv2d(d_out, d_out, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(d_out)
        self.shortcut = _shortcut(cfg.shortcut, d_in, d_out, stride) if cfg.residual else None
        self._init_hooks(cfg)

    def forward(self, x: Tensor) -> Tensor:
        h = F.relu(self.bn1(self.conv1(x)))  # (B, d_out, H/s, W/s)
        return self._add_shortcut(self.bn2(self.conv2(h)), x)


class Bottleneck(_Block):
    """Fig 5 right: 1x1 (reduce to d_out/4) -> 3x3 -> 1x1 (restore to d_out), BN after each, + shortcut."""

    expansion = 4

    def __init__(self, d_in: int, d_out: int, stride: int, cfg: ResNetConfig):
        super().__init__()
        d_mid = d_out // self.expansion
        s1, s3 = (stride, 1) if cfg.stride_in_1x1 else (1, stride)
        self.conv1 = nn.Conv2d(d_in, d_mid, 1, s1, bias=False)
        self.bn1 = nn.BatchNorm2d(d_mid)
        self.conv2 = nn.Conv2d(d_mid, d_mid, 3, s3, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(d_mid)
        self.conv3 = nn.Conv2d(d_mid, d_out, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(d_out)
        self.shortcut = _shortcut(cfg.shortcut, d_in, d_out, stride) if cfg.residual else None
        self._init_hooks(cfg)

    def forward(self, x: Tensor) -> Tensor:
        h = F.relu(self.bn1(self.conv1(x)))  # (B, d_mid, H, W)
        h = F.relu(self.bn2(self.conv2(h)))  # (B, d_mid, H/s, W/s)
        return self._add_shortcut(self.bn3(self.conv3(h)), x)  # (B, d_out, H/s, W/s)


class ResNet(HookedModule):
    """Stem, stages of blocks (the first block of every stage but the first halves the map), global average pool, fc.

    `forward(x)` -> logits (B, n_classes); with n_classes = 0, the pooled features (B, widths[-1]). Hook points
    (`run_with_cache`, `run_with_hooks`; the blocks' module paths, and so the state_dict keys, stay `stages.{s}.{b}`;
    `hook_aliases` names them `stages.{s}.blocks.{b}`):
        hook_stem                           (B, d_stem, H', W')  the stem's output (after its ReLU and pool)
        stages.{s}.blocks.{b}.hook_residual (B, C, H, W)  F(x), the residual branch after its last BN
        stages.{s}.blocks.{b}.hook_shortcut (B, C, H, W)  the shortcut (identity, option A or B); residual nets only
        stages.{s}.blocks.{b}.hook_out      (B, C, H, W)  act(F(x) + shortcut(x)), the next block's input
        hook_pooled                         (B, C)        the global average pool
        hook_logits                         (B, n_classes)
    """

    hook_aliases = ((r"^stages\.(\d+)\.(\d+)\.", r"stages.\1.blocks.\2."),)

    def __init__(self, cfg: ResNetConfig):
        super().__init__()
        self.cfg = cfg
        if cfg.stem == "imagenet":  # Table 1 conv1: 7x7, 64, stride 2; then 3x3 max pool, stride 2
            self.stem_conv = nn.Conv2d(cfg.in_channels, cfg.d_stem, 7, 2, 3, bias=False)
            self.pool = nn.MaxPool2d(3, 2, 1)
        else:  # Section 4.2: "The first layer is 3x3 convolutions"
            self.stem_conv = nn.Conv2d(cfg.in_channels, cfg.d_stem, 3, 1, 1, bias=False)
            self.pool = nn.Identity()
        self.stem_bn = nn.BatchNorm2d(cfg.d_stem)
        self.stem_act = activation(cfg.act_fn)
        block = BasicBlock if cfg.block == "basic" else Bottleneck
        stages, d_in = [], cfg.d_stem
        for i, (n, d_out) in enumerate(zip(cfg.depths, cfg.widths)):
            stride = 2 if i > 0 or cfg.downsample_first_stage else 1
            blocks = [block(d_in if j == 0 else d_out, d_out, stride if j == 0 else 1, cfg) for j in range(n)]
            stages.append(nn.Sequential(*blocks))
            d_in = d_out
        self.stages = nn.ModuleList(stages)
        self.fc = nn.Linear(d_in, cfg.n_classes) if cfg.n_classes else nn.Identity()
        self.hook_stem, self.hook_pooled, self.hook_logits = HookPoint(), HookPoint(), HookPoint()
        self.reset_parameters()

    def reset_parameters(self) -> None:
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def forward(self, x: Tensor) -> Tensor:
        h = self.hook_stem(self.pool(self.stem_act(self.stem_bn(self.stem_conv(x)))))  # (B, d_stem, H', W')
        for stage in self.stages:
            h = stage(h)  # (B, widths[i], H'/2^i, W'/2^i)
        return self.hook_logits(self.fc(self.hook_pooled(h.mean(dim=(2, 3)))))  # (B, n_classes)

    def response_layers(self) -> list[nn.BatchNorm2d]:
        """Fig 7's layers: the BN after every 3x3 convolution inside the blocks, in depth order."""
        out = []
        for stage in self.stages:
            for blk in stage:
                out += [blk.bn1, blk.bn2] if isinstance(blk, BasicBlock) else [blk.bn2]
        return out

    @classmethod
    def from_hf(cls, source) -> ResNet:
        """A ResNet with the config and weights of a transformers `ResNetForImageClassification` or `ResNetModel`
        (headless: n_classes = 0), or of the folder one was saved to; see mlreads/vision/hf.py."""
        from mlreads.vision.hf import resnet_from_hf

        return resnet_from_hf(source)


def channel_std(out: Tensor) -> float:
    """The spread of a layer's response (B, C, H, W): each channel's s.d. over images and positions, as a root mean
    square over channels. Pooling all channels into one s.d. would count the channels' different offsets (BN's beta)
    as response."""
    per_channel = out.transpose(0, 1).reshape(out.shape[1], -1).var(dim=1)  # (C,)
    return float(per_channel.mean().sqrt())


@torch.no_grad()
def response_stds(model: ResNet, x: Tensor) -> list[float]:
    """Fig 7: the standard deviation of each 3x3 layer's response (BN output, before ReLU) on the batch `x`, per
    channel (`channel_std`). Call it in eval mode, as the paper's test-time responses."""
    stds: list[float] = []
    hooks = [m.register_forward_hook(lambda _m, _i, out: stds.append(channel_std(out))) for m in
             model.response_layers()]  # fmt: skip
    try:
        model(x)
    finally:
        for h in hooks:
            h.remove()
    return stds

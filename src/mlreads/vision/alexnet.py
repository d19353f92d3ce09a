"""AlexNet: Krizhevsky, Sutskever & Hinton, "ImageNet Classification with Deep Convolutional Neural Networks", NIPS 2012.

Section 3 (architecture): five convolutional and three fully connected layers, ReLU (3.1), two GPUs whose towers
only meet in conv3 and the FC layers (3.2, here `groups=2`), local response normalisation (3.3), overlapping max
pooling z=3, s=2 (3.4), dropout 0.5 in fc6/fc7 (4.2). Section 5: init N(0, 0.01), bias 1 in conv2/4/5 and the FC
layers, 0 elsewhere.

Glossary (code -> paper):
    k, n, alpha, beta   the LRN constants of Section 3.3 (k=2, n=5, alpha=1e-4, beta=0.75), alpha in the PAPER's units
    widths              kernels per conv layer: (96, 256, 384, 384, 256)
    d_fc                neurons in fc6 and fc7: 4096
    groups              2: conv2, conv4, conv5 connect only to the kernel maps of their own GPU (Section 3.5)
    pool_kernel/stride  z and s of Section 3.4 (3, 2: overlapping; 2, 2: the traditional non-overlapping)
    features(x)         the 4096-d last hidden layer (fc7, after ReLU) used for Fig 4's nearest neighbours

Parameter count of `AlexNetConfig()` (227x227 input): 60,965,224, the paper's "60 million"; the torchvision variant
(`AlexNetConfig.torchvision()`, "One weird trick", no LRN, 64-192-384-256-256) has 61,100,840.

Deviations:
- Input 227x227, not the paper's 224: 224 gives conv1 an output of 54.25 (a known inconsistency of the paper).
- `AlexNetConfig.mnist()` is a width-scaled variant for 28x28 grey images (5x5 stride-1 conv1, widths /4 or more,
  smaller FC); it keeps every mechanism (LRN, overlapping pooling, dropout, groups) at a CPU size.
- `init="kaiming"` (He et al. 2015) is offered for the scaled variants: the paper's N(0, 0.01) with bias 1 was tuned
  for the full model.
- No PCA colour augmentation or 10-crop testing (Section 4.1).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal

import torch.nn.functional as F
from torch import Tensor, nn

from mlreads.core.nn.hooks import HookedModule, HookPoint


@dataclass(frozen=True)
class AlexNetConfig:
    in_channels: int = 3
    n_classes: int = 1000
    image_size: int = 227  # Deviation: 227, so that conv1's 11x11/4 output is the paper's 55
    widths: tuple[int, ...] = (96, 256, 384, 384, 256)  # kernels of conv1..conv5
    conv1_kernel: int = 11
    conv1_stride: int = 4
    conv1_padding: int = 0
    d_fc: int = 4096  # fc6 and fc7
    groups: int = 2  # the two-GPU towers of conv2/4/5
    lrn: bool = True  # Section 3.3, after ReLU in conv1 and conv2
    lrn_k: float = 2.0
    lrn_n: int = 5
    lrn_alpha: float = 1e-4  # the paper's alpha; torch's LocalResponseNorm wants alpha * n
    lrn_beta: float = 0.75
    pool_kernel: int = 3  # z (Section 3.4)
    pool_stride: int = 2  # s
    avgpool_to: int | None = None  # torchvision's AdaptiveAvgPool2d((6, 6)) before fc6
    dropout: float = 0.5
    dropout_first: bool = False  # torchvision: dropout before fc6 and fc7 instead of after
    activation: Literal["relu", "tanh"] = "relu"
    init: Literal["paper", "kaiming", "torch"] = "paper"

    @classmethod
    def torchvision(cls, n_classes: int = 1000) -> AlexNetConfig:
        """torchvision's `alexnet()`: 64-192-384-256-256, conv1 padding 2, no LRN, no groups, adaptive 6x6 pool."""
        return cls(n_classes=n_classes, image_size=224, widths=(64, 192, 384, 256, 256), conv1_padding=2, groups=1,
                   lrn=False, avgpool_to=6, dropout_first=True, init="torch")  # fmt: skip

    @classmethod
    def mnist(cls, scale: int = 8, d_fc: int = 256, **kw) -> AlexNetConfig:
        """A width-scaled AlexNet for 28x28 grey images: conv1 5x5 stride 1 (28 -> 28 -> pool 13), widths / scale."""
        widths = tuple(max(2 * cls.groups, w // scale) for w in cls.widths)
        return replace(cls(in_channels=1, n_classes=10, image_size=28, widths=widths, conv1_kernel=5, conv1_stride=1,
                           conv1_padding=2, d_fc=d_fc), **kw)  # fmt: skip

    def spatial_sizes(self) -> list[int]:
        """Side of the feature map after conv1, pool1, conv2, pool2, conv3, conv4, conv5, pool5."""
        s = (self.image_size + 2 * self.conv1_padding - self.conv1_kernel) // self.conv1_stride + 1
        pool = lambda v: (v - self.pool_kernel) // self.pool_stride + 1
        p1 = pool(s)
        p2 = pool(p1)
        return [s, p1, p1, p2, p2, p2, p2, pool(p2)]

    @property
    def d_flat(self) -> int:
        side = self.avgpool_to or self.spatial_sizes()[-1]
        return self.widths[4] * side * side


def local_response_norm(a: Tensor, k: float = 2.0, n: int = 5, alpha: float = 1e-4, beta: float = 0.75) -> Tensor:
    """Section 3.3: b^i = a^i / (k + alpha * sum_{j=max(0, i-n/2)}^{min(N-1, i+n/2)} (a^j)^2)^beta over channels.

    `alpha` is the paper's (1e-4). torch's `F.local_response_norm` divides its alpha by n, so it is given alpha * n.
    The loop over channels is in `reference.local_response_norm_ref`.
    """
    return F.local_response_norm(a, n, alpha=alpha * n, beta=beta, k=k)


class LRN(nn.Module):
    def __init__(self, k: float, n: int, alpha: float, beta: float):
        super().__init__()
        self.k, self.n, self.alpha, self.beta = k, n, alpha, beta

    def forward(self, x: Tensor) -> Tensor:
        return local_response_norm(x, self.k, self.n, self.alpha, self.beta)

    def extra_repr(self) -> str:
        return f"k={self.k}, n={self.n}, alpha={self.alpha} (paper units), beta={self.beta}"


def _act(name: str) -> nn.Module:
    return nn.ReLU() if name == "relu" else nn.Tanh()


def _hook_conv_activations(model: nn.Module, body: nn.Sequential) -> dict[int, str]:
    """Give `model` one HookPoint per nonlinearity of `body` (hook_conv1, hook_conv2, ...: each conv layer's
    activation) and return {index in body: hook name}. The hook points live beside `body`, not in it, so the
    Sequential's indices (and the state_dict keys body.{i}...) stay as they are."""
    acts = [i for i, layer in enumerate(body) if isinstance(layer, nn.ReLU | nn.Tanh)]
    names = {i: f"hook_conv{k}" for k, i in enumerate(acts, start=1)}
    for name in names.values():
        setattr(model, name, HookPoint())
    return names


def _run_body(model: nn.Module, body: nn.Sequential, hooks: dict[int, str], x: Tensor) -> Tensor:
    """body(x), passing each conv activation through its hook point (the loop nn.Sequential runs, plus identities)."""
    for i, layer in enumerate(body):
        x = layer(x)
        if i in hooks:
            x = getattr(model, hooks[i])(x)
    return x


class AlexNet(HookedModule):
    """The eight learned layers of Section 3.5. `forward(x)` -> logits (B, n_classes); `features(x)` -> fc7 (B, d_fc).

    Hook points (`run_with_cache`, `run_with_hooks`; sides from `cfg.spatial_sizes()`):
        hook_conv1 ... hook_conv5   (B, widths[k], side, side)  each conv layer after its nonlinearity (before LRN
                                    and pooling)
        hook_fc6, hook_fc7          (B, d_fc)  after the nonlinearity, before the next dropout; hook_fc7 = features(x)
        hook_logits                 (B, n_classes)
    """

    def __init__(self, cfg: AlexNetConfig):
        super().__init__()
        self.cfg = cfg
        w, g = cfg.widths, cfg.groups
        pool = lambda: nn.MaxPool2d(cfg.pool_kernel, cfg.pool_stride)
        lrn = lambda: LRN(cfg.lrn_k, cfg.lrn_n, cfg.lrn_alpha, cfg.lrn_beta) if cfg.lrn else nn.Identity()
        self.conv1 = nn.Conv2d(cfg.in_channels, w[0], cfg.conv1_kernel, cfg.conv1_stride, cfg.conv1_padding)
        self.conv2 = nn.Conv2d(w[0], w[1], 5, padding=2, groups=g)  # own tower only
        self.conv3 = nn.Conv2d(w[1], w[2], 3, padding=1)  # both towers
        self.conv4 = nn.Conv2d(w[2], w[3], 3, padding=1, groups=g)
        self.conv5 = nn.Conv2d(w[3], w[4], 3, padding=1, groups=g)
        # Section 3.5: "Response-normalization layers follow the first and second convolutional layers. Max-pooling
        # layers ... follow both response-normalization layers as well as the fifth convolutional layer."
        self.body = nn.Sequential(
            self.conv1, _act(cfg.activation), lrn(), pool(),  # (B, w0, 27, 27) at 227
            self.conv2, _act(cfg.activation), lrn(), pool(),  # (B, w1, 13, 13)
            self.conv3, _act(cfg.activation),
            self.conv4, _act(cfg.activation),
            self.conv5, _act(cfg.activation), pool(),  # (B, w4, 6, 6)
        )  # fmt: skip
        self.avgpool = nn.AdaptiveAvgPool2d(cfg.avgpool_to) if cfg.avgpool_to else nn.Identity()
        self.fc6 = nn.Linear(cfg.d_flat, cfg.d_fc)
        self.fc7 = nn.Linear(cfg.d_fc, cfg.d_fc)
        self.fc8 = nn.Linear(cfg.d_fc, cfg.n_classes)
        self.drop6 = nn.Dropout(cfg.dropout)
        self.drop7 = nn.Dropout(cfg.dropout)
        self.act6, self.act7 = _act(cfg.activation), _act(cfg.activation)
        self._conv_hooks = _hook_conv_activations(self, self.body)
        self.hook_fc6, self.hook_fc7, self.hook_logits = HookPoint(), HookPoint(), HookPoint()
        self.reset_parameters()

    def reset_parameters(self) -> None:
        if self.cfg.init == "torch":
            return
        for i, layer in enumerate([self.conv1, self.conv2, self.conv3, self.conv4, self.conv5, self.fc6, self.fc7,
                                   self.fc8], start=1):  # fmt: skip
            if self.cfg.init == "paper":  # Section 5
                nn.init.normal_(layer.weight, 0.0, 0.01)
                nn.init.constant_(layer.bias, 1.0 if i in (2, 4, 5, 6, 7, 8) else 0.0)
            else:
                nn.init.kaiming_normal_(layer.weight, nonlinearity="relu")
                nn.init.zeros_(layer.bias)

    def features(self, x: Tensor) -> Tensor:
        """The last hidden layer (fc7 after its nonlinearity), shape (B, d_fc): Section 6.1's feature vector."""
        h = self.avgpool(_run_body(self, self.body, self._conv_hooks, x)).flatten(1)  # (B, d_flat)
        if self.cfg.dropout_first:
            h = self.hook_fc6(self.act6(self.fc6(self.drop6(h))))  # (B, d_fc)
            return self.hook_fc7(self.act7(self.fc7(self.drop7(h))))
        h = self.hook_fc6(self.act6(self.fc6(h)))
        return self.hook_fc7(self.act7(self.fc7(self.drop6(h))))

    def forward(self, x: Tensor) -> Tensor:
        h = self.features(x)  # (B, d_fc)
        return self.hook_logits(self.fc8(h if self.cfg.dropout_first else self.drop7(h)))  # (B, n_classes)


@dataclass(frozen=True)
class SmallConvNetConfig:
    """Section 3.1 / Fig 1's "four-layer convolutional neural network" (cuda-convnet's layers-18pct style)."""

    in_channels: int = 1
    image_size: int = 28
    widths: tuple[int, int, int] = (16, 16, 32)
    n_classes: int = 10
    activation: Literal["relu", "tanh"] = "relu"


class SmallConvNet(HookedModule):
    """conv5x5 -> pool 3/2 -> conv5x5 -> pool 3/2 -> conv5x5 -> pool 3/2 -> fc; no normalisation, no dropout.

    Hook points (`run_with_cache`, `run_with_hooks`; 28x28 input: sides 28, 13, 6):
        hook_conv1 ... hook_conv3   (B, widths[k], side, side)  each conv layer after its nonlinearity, before pooling
        hook_logits                 (B, n_classes)
    """

    def __init__(self, cfg: SmallConvNetConfig):
        super().__init__()
        self.cfg = cfg
        w = cfg.widths
        side = cfg.image_size
        layers: list[nn.Module] = []
        c_in = cfg.in_channels
        for c in w:
            layers += [nn.Conv2d(c_in, c, 5, padding=2), _act(cfg.activation), nn.MaxPool2d(3, 2)]
            side = (side - 3) // 2 + 1  # 28 -> 13 -> 6 -> 2
            c_in = c
        self.body = nn.Sequential(*layers)
        self.fc = nn.Linear(w[-1] * side * side, cfg.n_classes)
        self._conv_hooks = _hook_conv_activations(self, self.body)
        self.hook_logits = HookPoint()

    def forward(self, x: Tensor) -> Tensor:
        return self.hook_logits(self.fc(_run_body(self, self.body, self._conv_hooks, x).flatten(1)))  # (B, n_classes)


def n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def neuron_counts(cfg: AlexNetConfig) -> list[int]:
    """Section 3.5's neurons per layer: conv1..conv5 outputs, then fc6, fc7, fc8."""
    s = cfg.spatial_sizes()
    sides = [s[0], s[2], s[4], s[5], s[6]]
    return [w * side * side for w, side in zip(cfg.widths, sides)] + [cfg.d_fc, cfg.d_fc, cfg.n_classes]


"""A small, cached MNIST classifier whose penultimate layer is the feature space of our sample-quality metrics.

An MLP 784-512-512-10 (ReLU), trained once on MNIST train with a fixed seed (not the run's: every run must measure
in the same space) and cached as safetensors under `data_root()/featnets/`, with the hash of its file recorded in
the run's metrics. Training it is experiment machinery: `exp_common.load_or_train`. It stands in for the Inception network of FID, whose weights cannot be downloaded here.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch.nn.functional as F
from torch import Tensor, nn

from mlreads.core.fields import positive
from mlreads.core.nn.hooks import HookedModule, HookPoint

FEATNET_SEED = 20_240_601  # fixed: the metric space must not depend on the run's seed


@dataclass(frozen=True)
class FeatNetConfig:
    d_hidden: int = positive(512)
    steps: int = positive(1200)  # about 3 epochs at batch 128
    batch_size: int = positive(128)
    lr: float = positive(1e-3)
    # > 1: trained and used on images average-pooled by `pool` and blown back up to 28x28 (`pool_up`), for samples
    # of a model of pooled images
    pool: int = positive(1, le=28)


class FeatNet(HookedModule):
    """images (B, 784) -> class logits (B, 10). Hook points (`run_with_cache`, `run_with_hooks`):
        hook_fc1, hook_fc2   (B, d_hidden)  the ReLU outputs; hook_fc2 is `features(x)`, the metric space
        hook_logits          (B, 10)
    """

    def __init__(self, cfg: FeatNetConfig):
        super().__init__()
        self.fc1 = nn.Linear(784, cfg.d_hidden)
        self.fc2 = nn.Linear(cfg.d_hidden, cfg.d_hidden)
        self.fc3 = nn.Linear(cfg.d_hidden, 10)
        self.hook_fc1, self.hook_fc2, self.hook_logits = HookPoint(), HookPoint(), HookPoint()

    def features(self, x: Tensor) -> Tensor:
        """The 512-d penultimate activations of images (B, 784) in [0, 1]."""
        return self.hook_fc2(F.relu(self.fc2(self.hook_fc1(F.relu(self.fc1(x))))))

    def forward(self, x: Tensor) -> Tensor:
        return self.hook_logits(self.fc3(self.features(x)))


def cache_path(cfg: FeatNetConfig) -> Path:
    from mlreads.core.data import data_root

    pooled = f"-pool{cfg.pool}" if cfg.pool > 1 else ""
    name = f"mnist-mlp{cfg.d_hidden}-s{cfg.steps}-b{cfg.batch_size}{pooled}-seed{FEATNET_SEED}.safetensors"
    return data_root() / "featnets" / name


def pool_up(x: Tensor, pool: int) -> Tensor:
    """Images (n, 784) average-pooled by `pool` and repeated back to 28x28 (n, 784): what a model of pooled images
    shows the feature net. `pool` 1 returns x."""
    if pool == 1:
        return x
    small = F.avg_pool2d(x.view(-1, 1, 28, 28), pool)
    return F.interpolate(small, scale_factor=pool, mode="nearest").flatten(1)

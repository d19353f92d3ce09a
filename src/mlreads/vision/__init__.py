"""Classics II, vision: AlexNet (Krizhevsky et al. 2012) and ResNet with its plain twin (He et al. 2016)."""

from mlreads.vision.alexnet import (
    LRN,
    AlexNet,
    AlexNetConfig,
    SmallConvNet,
    SmallConvNetConfig,
    local_response_norm,
    n_params,
    neuron_counts,
)
from mlreads.vision.resnet import ResNet, ResNetConfig, response_stds, shortcut_a

__all__ = [
    "LRN",
    "AlexNet",
    "AlexNetConfig",
    "ResNet",
    "ResNetConfig",
    "SmallConvNet",
    "SmallConvNetConfig",
    "local_response_norm",
    "n_params",
    "neuron_counts",
    "response_stds",
    "shortcut_a",
]  # fmt: skip

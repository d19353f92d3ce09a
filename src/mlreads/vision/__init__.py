"""Classics II, vision: AlexNet (Krizhevsky et al. 2012) and ResNet with its plain twin (He et al. 2016)."""

from mlreads.core.run.saved import Loadable
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

# The model classes a run may save and `mlreads.load_run` rebuilds (core/run/saved.py): each with its config.
LOADABLE = (Loadable(AlexNet, AlexNetConfig),
            Loadable(SmallConvNet, SmallConvNetConfig),
            Loadable(ResNet, ResNetConfig))

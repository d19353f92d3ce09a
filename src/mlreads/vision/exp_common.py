"""What the vision experiments share: image tensors from MNIST or Fashion-MNIST, batches, and error rates."""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

DATASETS = ("mnist", "fashion")  # what `load_images` reads; the experiments' `dataset` is one of them


def load_images(dataset: str, pool: int = 1) -> dict[str, tuple[Tensor, Tensor]]:
    """{"train", "val", "test"} -> (x float (n, 1, 28/pool, 28/pool) in [0, 1], y int64) for "mnist" or "fashion".

    Fashion-MNIST missing raises DataMissing (exit 2) with its apt-get command.
    """
    from mlreads.core.data import require

    require(dataset)
    if dataset == "fashion":
        from mlreads.core.data.fashion import load_fashion

        raw = load_fashion()
    else:
        from mlreads.core.data.mnist import load_mnist

        raw = load_mnist()
    out = {}
    for split, (x, y) in raw.items():
        img = torch.from_numpy(x).float().div_(255).view(-1, 1, 28, 28)  # (n, 1, 28, 28)
        if pool > 1:
            img = F.avg_pool2d(img, pool)  # (n, 1, 28/pool, 28/pool)
        out[split] = (img.contiguous(), torch.from_numpy(y))
    return out


def batches(x: Tensor, y: Tensor, batch_size: int) -> Callable[[int, torch.Generator], tuple[Tensor, Tensor]]:
    """A `fit` batch_fn drawing uniformly with replacement from (x, y), randomness only from `gen`."""

    def batch_fn(step: int, gen: torch.Generator) -> tuple[Tensor, Tensor]:
        idx = torch.randint(0, len(x), (batch_size,), generator=gen)
        return x[idx], y[idx]

    return batch_fn


def cross_entropy(model: nn.Module, batch: tuple[Tensor, Tensor]) -> Tensor:
    x, y = batch
    return F.cross_entropy(model(x), y)


@torch.no_grad()
def error_rate(model: nn.Module, x: Tensor, y: Tensor, batch_size: int = 1000) -> float:
    """Fraction misclassified, in the model's current mode (call inside `evaluate`, i.e. eval mode)."""
    wrong = sum(int((model(xb).argmax(1) != yb).sum()) for xb, yb in zip(x.split(batch_size), y.split(batch_size)))
    return wrong / len(x)


def subset(x: Tensor, y: Tensor, n: int, gen: torch.Generator) -> tuple[Tensor, Tensor]:
    idx = torch.randperm(len(x), generator=gen)[:n]
    return x[idx], y[idx]


def standardise(x_tr: Tensor, *others: Tensor) -> list[Tensor]:
    """Subtract the training set's mean image and divide by its pixels' s.d.; the same transform for the others."""
    mean = x_tr.mean(0, keepdim=True)  # (1, C, H, W)
    sd = (x_tr - mean).std()
    return [(x - mean) / sd for x in (x_tr, *others)]

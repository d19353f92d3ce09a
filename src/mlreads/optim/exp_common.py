"""What the Adam and Sophia experiments share: MNIST tensors, random minibatches, and the optimisers they compare,
by name, as factories for `fit` (ours for Adam and Sophia; torch's own for the baselines, which are their oracles)."""

from __future__ import annotations

from collections.abc import Callable

import torch

from mlreads.core.data.mnist import mnist_tensors, random_batches  # noqa: F401  (re-exported for the experiments)
from mlreads.optim.adam import Adam

Factory = Callable[[list[dict]], torch.optim.Optimizer]


OPTIMIZERS = ("adam", "adagrad", "rmsprop", "adadelta", "sgd-nesterov")  # the names `optimizer` knows


def optimizer(name: str, **kw) -> Factory:
    """A factory for fit's `optimizer=`: "adam" (ours, Algorithm 1), "adagrad", "rmsprop", "adadelta",
    "sgd-nesterov" (momentum 0.9) from torch.optim. Groups carry lr and weight_decay."""
    makers = {
        "adam": lambda g: Adam(g, **kw),
        "adagrad": lambda g: torch.optim.Adagrad(g, **kw),
        "rmsprop": lambda g: torch.optim.RMSprop(g, **kw),
        "adadelta": lambda g: torch.optim.Adadelta(g, **kw),
        "sgd-nesterov": lambda g: torch.optim.SGD(g, momentum=0.9, nesterov=True, **kw),
    }
    if name not in makers:
        raise ValueError(f"unknown optimizer {name!r}; known: {', '.join(makers)}")
    return makers[name]


def lr_grid(items: tuple[str, ...]) -> list[tuple[str, tuple[float, ...]]]:
    """("adam:1e-3/3e-3", "adagrad:1e-2") -> [("adam", (1e-3, 3e-3)), ("adagrad", (1e-2,))]: each optimiser and its
    learning rates, written so that `--set lrs=adam:1e-3/3e-3,adagrad:1e-2` can change them."""
    grid = []
    for item in items:
        name, _, rates = item.partition(":")
        try:
            lrs = tuple(float(r) for r in rates.split("/"))
        except ValueError:
            raise ValueError(f"lrs item {item!r}: write optimiser:lr/lr/..., e.g. adam:1e-3/3e-3") from None
        if not name or not lrs or any(not lr > 0 for lr in lrs):
            raise ValueError(f"lrs item {item!r}: write optimiser:lr/lr/... with positive rates, e.g. adam:1e-3/3e-3")
        if name not in OPTIMIZERS:
            raise ValueError(f"lrs item {item!r}: unknown optimiser {name!r}; known: {', '.join(OPTIMIZERS)}")
        grid.append((name, lrs))
    return grid


def lr_grid_problem(items: tuple[str, ...]) -> str | None:
    """The rule of an `lrs` config field: None when `lr_grid` reads it, else what is wrong (checked before a run)."""
    try:
        lr_grid(items)
    except ValueError as e:
        return str(e)
    return None

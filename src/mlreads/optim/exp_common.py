"""What the Adam and Sophia experiments share: MNIST tensors, random minibatches, and the optimisers they compare,
by name, as factories for `fit` (ours for Adam and Sophia; torch's own for the baselines, which are their oracles)."""

from __future__ import annotations

from collections.abc import Callable

import torch

from mlreads.optim.adam import Adam

Factory = Callable[[list[dict]], torch.optim.Optimizer]


def mnist_tensors(n_train: int, n_test: int = 0) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """The first n_train training and n_test test images as float (n, 784) in [0, 1], with int64 labels."""
    from mlreads.core.data.mnist import load_mnist

    data = load_mnist()
    out = {}
    for split, n in (("train", n_train), ("test", n_test)):
        x, y = data[split]
        out[split] = (torch.from_numpy(x[:n]).float() / 255, torch.from_numpy(y[:n]).long())
    return out


def random_batches(*tensors: torch.Tensor, batch_size: int):
    """A `batch_fn` for fit: rows drawn with replacement from `gen` (an "epoch" is len(tensors[0]) samples)."""

    def batch_fn(step: int, gen: torch.Generator):
        idx = torch.randint(len(tensors[0]), (batch_size,), generator=gen)
        return tuple(t[idx] for t in tensors)

    return batch_fn


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
        grid.append((name, lrs))
    return grid

"""Checks shared by every model's hook tests (tests/<pkg>/test_*_hooks.py): run_with_cache returns forward's output
exactly, the cache holds exactly the documented names with their shapes, and an ablation hook reaches the output."""

from __future__ import annotations

import torch
from torch import Tensor


def _tensors(out) -> list[Tensor]:
    """The tensors of a model output: a tensor, or a tuple of tensors and Nones (Seq2Seq returns (logits, align))."""
    return [out] if isinstance(out, Tensor) else [o for o in out if o is not None]


def cache_matching_forward(model, *args, **kwargs):
    """Run `model(*args)` and `model.run_with_cache(*args)`; assert bit-equal outputs; return the cache."""
    with torch.no_grad():
        plain = model(*args, **kwargs)
        out, cache = model.run_with_cache(*args, **kwargs)
    for a, b in zip(_tensors(plain), _tensors(out), strict=True):
        torch.testing.assert_close(b, a, rtol=0, atol=0)
    return cache


def assert_names_and_shapes(cache, expected: dict[str, tuple[int, ...]]) -> None:
    """The cache holds exactly the names of `expected`, each with its shape."""
    assert sorted(cache) == sorted(expected), set(cache) ^ set(expected)
    shapes = {name: tuple(value.shape) for name, value in cache.items()}
    assert shapes == expected


def assert_ablation_changes_output(model, name: str, *args, **kwargs) -> None:
    """Zeroing the activation at hook `name` changes the output, and the model is unhooked afterwards."""
    with torch.no_grad():
        clean = _tensors(model(*args, **kwargs))[0]
        ablated = _tensors(model.run_with_hooks(*args, fwd_hooks=[(name, lambda a, hook: torch.zeros_like(a))],
                                                **kwargs))[0]  # fmt: skip
        again = _tensors(model(*args, **kwargs))[0]
    assert not torch.equal(ablated, clean), f"zeroing {name} left the output unchanged"
    torch.testing.assert_close(again, clean, rtol=0, atol=0)

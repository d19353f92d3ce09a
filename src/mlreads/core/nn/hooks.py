"""Hook points and an activation cache, with TransformerLens-style names.

Every model in mlreads places a `HookPoint` (an identity module) on each activation worth reading, and mixes in
`HookedModule`, which names the hook points after their module path (``blocks.0.attn.hook_pattern``) and provides

    logits, cache = model.run_with_cache(x, names_filter=None)
    logits = model.run_with_hooks(x, fwd_hooks=[("blocks.0.attn.hook_pattern", fn)])

A hook function has the TransformerLens signature ``fn(activation, hook) -> activation | None``; returning a tensor
replaces the activation (ablation, patching), returning None leaves it unchanged.

A model whose module tree is fixed by its checkpoints (state_dict keys such as ``encoder.0.self_attn.w_q.weight``)
publishes TransformerLens-style names through `HookedModule.hook_aliases`, regex rewrites of the module paths
(``encoder.0.self_attn.hook_pattern`` -> ``encoder.blocks.0.attn.hook_pattern``); parameter names stay as they are.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from contextlib import contextmanager

import torch
from torch import Tensor, nn

HookFn = Callable[[Tensor, "HookPoint"], Tensor | None]
NamesFilter = None | str | Iterable[str] | Callable[[str], bool]


class HookPoint(nn.Module):
    """An identity on its input that lets hooks read or replace the activation passing through it."""

    def __init__(self) -> None:
        super().__init__()
        self.name: str = ""
        self._fns: list[HookFn] = []

    def forward(self, x: Tensor) -> Tensor:
        for fn in self._fns:
            out = fn(x, self)
            if out is not None:
                x = out
        return x

    def add(self, fn: HookFn) -> None:
        self._fns.append(fn)

    def clear(self) -> None:
        self._fns.clear()

    @property
    def has_hooks(self) -> bool:
        """True while a hook function is attached (models may switch to an explicit, hookable path)."""
        return bool(self._fns)


class ActivationCache(dict):
    """A dict from hook name to activation, with a few TransformerLens conveniences."""

    def __getitem__(self, key: str | tuple) -> Tensor:
        if isinstance(key, tuple):  # cache["pattern", 0] -> "blocks.0.attn.hook_pattern"
            key = _resolve(self, *key)
        return super().__getitem__(key)

    def stack(self, suffix: str) -> Tensor:
        """Stack every cached activation whose name ends with `suffix`, in layer order."""
        names = [k for k in self if k.endswith(suffix)]
        if not names:
            raise KeyError(f"no cached activation ends with {suffix!r}")
        return torch.stack([self[k] for k in names])


def _resolve(cache: ActivationCache, short: str, layer: int) -> str:
    for k in cache:
        if k.startswith(f"blocks.{layer}.") and k.rsplit(".", 1)[-1] in (short, f"hook_{short}"):
            return k
    raise KeyError(f"no cached hook named {short!r} in layer {layer}")


def _matcher(names_filter: NamesFilter) -> Callable[[str], bool]:
    if names_filter is None:
        return lambda name: True
    if isinstance(names_filter, str):
        return lambda name: name == names_filter
    if callable(names_filter):
        return names_filter
    allowed = set(names_filter)
    return lambda name: name in allowed


class HookedModule(nn.Module):
    """Mix-in for models with `HookPoint`s: names them and runs with hooks or a cache."""

    # (pattern, replacement) pairs applied in order with re.sub to each hook point's module path (see the module
    # docstring); empty: the hook name is the module path.
    hook_aliases: tuple[tuple[str, str], ...] = ()

    def hook_points(self) -> dict[str, HookPoint]:
        points = {}
        for path, module in self.named_modules():
            if isinstance(module, HookPoint):
                name = path
                for pattern, replacement in self.hook_aliases:
                    name = re.sub(pattern, replacement, name)
                module.name = name
                points[name] = module
        return points

    @contextmanager
    def hooks(self, fwd_hooks: Iterable[tuple[str | Callable[[str], bool], HookFn]]):
        """Attach forward hooks for the duration of a `with` block; they are removed on exit, even on error."""
        points = self.hook_points()
        touched = []
        try:
            for name, fn in fwd_hooks:
                match = _matcher(name)
                hits = [p for n, p in points.items() if match(n)]
                if not hits:
                    raise KeyError(f"no hook point matches {name!r}; see model.hook_points()")
                for p in hits:
                    p.add(fn)
                    touched.append(p)
            yield self
        finally:
            for p in touched:
                p.clear()

    def run_with_hooks(self, *args, fwd_hooks=(), **kwargs):
        with self.hooks(fwd_hooks):
            return self(*args, **kwargs)

    def run_with_cache(self, *args, names_filter: NamesFilter = None, detach: bool = True, **kwargs):
        """Run the model and return `(out, cache)`, the cache holding every activation that `names_filter` keeps."""
        cache = ActivationCache()
        match = _matcher(names_filter)

        def save(x: Tensor, hook: HookPoint) -> None:
            cache[hook.name] = x.detach() if detach else x

        names = [n for n in self.hook_points() if match(n)]
        with self.hooks([(n, save) for n in names]):
            out = self(*args, **kwargs)
        return out, ActivationCache((n, cache[n]) for n in names if n in cache)

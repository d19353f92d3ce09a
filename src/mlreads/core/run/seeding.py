"""One seed channel: the run's seed, and named seeds derived from it for every consumer of randomness.

The CLI's `--seed` reaches `RunContext.seed`. Everything random in a run draws from a seed derived from it by name,
so each consumer is reproducible on its own and independent of the order in which others draw:

    ctx.seed_for("data")          # fit's batch generator (the default: every model of a run sees the same batches)
    ctx.seed_for("init/mamba")    # a model's initial weights
    ctx.generator("probe")        # a torch.Generator for an evaluation set

`init_rng(seed)` scopes the global torch RNG to one model's construction (torch's layers draw their defaults from
it), then restores it, so building a model never shifts anyone else's randomness. `seed_everything` seeds the
global RNGs once, for code that still draws from them (dropout masks inside `fit`, which checkpoints that state).
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import torch

MAX_SEED = 2**63 - 1


def derive_seed(seed: int, name: str) -> int:
    """A 63-bit seed for the consumer `name`, a pure function of (seed, name). `name=""` returns `seed` itself."""
    if not name:
        return int(seed)
    digest = hashlib.blake2b(f"{int(seed)}/{name}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") & MAX_SEED


def generator(seed: int, name: str = "") -> torch.Generator:
    """A CPU torch.Generator seeded with `derive_seed(seed, name)`."""
    return torch.Generator().manual_seed(derive_seed(seed, name))


@contextmanager
def init_rng(seed: int) -> Iterator[None]:
    """Seed the global torch RNG for the block (a model's construction), then restore the state it had."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


def seed_everything(seed: int) -> None:
    """Seed Python's, NumPy's and torch's global RNGs (the runner calls it once per run)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)

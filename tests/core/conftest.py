"""Fixtures for the core tests: a toy experiment registered for the duration of one test."""

from dataclasses import dataclass

import pytest

from mlreads.core import registry
from mlreads.core.registry import Experiment, at_least, holds


@dataclass(frozen=True)
class ToyCfg:
    value: float = 2.0
    steps: int = 3


def _toy_run(cfg, ctx):
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots()
    ax.plot(range(cfg.steps))
    ctx.savefig(fig, "curve")
    for s in range(cfg.steps):
        ctx.log(step=s, loss=1.0 / (s + 1))
    ctx.write_text("sample", "hello")
    return {"value": cfg.value, "rising": cfg.value > 1}


@pytest.fixture
def toy(monkeypatch):
    exp = Experiment(
        id="toytest/threshold", paper="Nobody 2026", claim="value reaches 1", paper_value="1.0",
        configs={"smoke": ToyCfg(), "quick": ToyCfg(value=0.5)}, run=_toy_run,
        checks={"smoke": [at_least("value", 1.0)], "quick": [at_least("value", 1.0), holds("rising", "value > 1")]},
        headline="value",
    )  # fmt: skip
    monkeypatch.setitem(registry.REGISTRY, exp.id, exp)
    return exp


@pytest.fixture
def ckpt_toy(monkeypatch):
    """`toytest/ckpt`: a linear layer trained through fit with checkpoints every 2 of 8 steps (scripts/toy_cli.py)."""
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).parent / "scripts"))
    try:
        import toy_cli
    finally:
        sys.path.pop(0)
    registry.load_all()
    monkeypatch.setitem(registry.REGISTRY, toy_cli.CKPT.id, toy_cli.CKPT)
    return toy_cli.CKPT

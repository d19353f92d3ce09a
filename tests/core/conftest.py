"""Fixtures for the core tests: a toy experiment registered for the duration of one test."""

import json
from dataclasses import dataclass
from pathlib import Path

import pytest

from mlreads.core.run import registry
from mlreads.core.run.registry import Experiment, at_least, holds


@dataclass(frozen=True)
class ToyCfg:
    value: float = 2.0
    steps: int = 3


def _toy_run(cfg, ctx):
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots()
    ax.plot(range(cfg.steps))
    ctx.savefig(fig, "curve", caption="the toy curve rises")
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


def _publish_fake(results: Path, exp_id: str, budget: str, seed: int, verdict: str, value: float, elapsed=300.0):
    """A ledger entry as `mlreads publish` writes it (provenance faked: tests only)."""
    from mlreads.core.run.results import run_dir_name

    entry = {"id": exp_id, "paper": "Nobody 2026", "claim": "value reaches 1", "paper_value": "1.0", "budget": budget,
             "seed": seed, "config": {}, "overrides": {}, "checks": [{"name": "value >= 1.0", "passed": verdict == "pass",
             "measured": value, "expected": "value >= 1.0"}], "verdict": verdict, "metrics": {"value": value},
             "headline": "value", "elapsed_s": elapsed, "env": {},
             "published": {"commit": "0" * 40, "date": "2026-12-01T00:00:00Z", "machine": "test", "threads": 1,
                           "torch": "2.13.0"}}  # fmt: skip
    path = results / exp_id / f"{run_dir_name(budget, seed)}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(entry))
    return path


@pytest.fixture
def fake_publish():
    """`fake_publish(results, id, budget, seed, verdict, value)` writes a ledger entry with faked provenance."""
    return _publish_fake


@pytest.fixture
def ckpt_toy(monkeypatch):
    """`toytest/ckpt`: a linear layer trained through fit with checkpoints every 2 of 8 steps (scripts/toy_cli.py)."""
    import sys

    sys.path.insert(0, str(Path(__file__).parent / "scripts"))
    try:
        import toy_cli
    finally:
        sys.path.pop(0)
    registry.load_all()
    monkeypatch.setitem(registry.REGISTRY, toy_cli.CKPT.id, toy_cli.CKPT)
    return toy_cli.CKPT

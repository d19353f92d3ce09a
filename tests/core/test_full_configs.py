"""Every claim's full budget, checked from the registry: it says what it is against the paper, and it can be resumed.

1. Every registered experiment has a `full_scale`: "The paper's recipe: ..." or "Largest faithful scale: ...; the
   paper: ...; why: ..." with an estimate in CPU-hours where it has a full config, else "No full budget: <why>".
2. Every training config inside a full config (a TrainConfig or a dataclass with `ckpt_every`, found recursively)
   checkpoints (`ckpt_every > 0`), so a killed full run loses at most one cadence of training and `--resume`
   continues it bit for bit; full runs estimated under SHORT_H CPU-hours (minutes) are exempt.
"""

from __future__ import annotations

import dataclasses

import pytest

from mlreads.core.run.registry import load_all
from mlreads.core.train import TrainConfig

EXPERIMENTS = load_all()
# Full runs that cannot resume yet, each with the reason (its full_scale says so too): a checkpoint would be a promise
# the run cannot keep.
NOT_RESUMABLE = {
    "alexnet/relu-vs-tanh": "its rate race keeps its evaluations outside fit: a resume would lose them",
    "transformer/seq2seq": "an equal-CPU-time race: each model stops on a CPU-time limit, which a resume cannot replay",
}
FORMS = ("The paper's recipe", "Largest faithful scale: ", "No full budget: ")
SHORT_H = 0.1  # a full run estimated under this many CPU-hours need not checkpoint


def _cpu_hours(full_scale: str) -> float:
    """The full run's estimate from its full_scale ("about N CPU-hours"); inf when it states none."""
    import re

    found = re.findall(r"about ([0-9.]+) CPU-hours?", full_scale)
    return float(found[-1]) if found else float("inf")


def _ids():
    return list(EXPERIMENTS)


def train_configs(cfg, path: str = "") -> list[tuple[str, TrainConfig]]:
    """(dotted field path, config) of every training config inside a config: a TrainConfig, or any other dataclass
    with a `ckpt_every` field that builds one (the toy models' ToyTrain), in fields of nested dataclasses and the
    items of tuples and lists."""
    if isinstance(cfg, TrainConfig) or (dataclasses.is_dataclass(cfg) and not isinstance(cfg, type)
                                        and "ckpt_every" in {f.name for f in dataclasses.fields(cfg)}):  # fmt: skip
        return [(path, cfg)]
    if dataclasses.is_dataclass(cfg) and not isinstance(cfg, type):
        return [found for f in dataclasses.fields(cfg)
                for found in train_configs(getattr(cfg, f.name), f"{path}.{f.name}" if path else f.name)]  # fmt: skip
    if isinstance(cfg, tuple | list):
        return [found for k, item in enumerate(cfg) for found in train_configs(item, f"{path}[{k}]")]
    return []


def test_the_walk_finds_train_configs_at_any_depth():
    @dataclasses.dataclass(frozen=True)
    class Inner:
        opt: TrainConfig = TrainConfig(steps=5)

    @dataclasses.dataclass(frozen=True)
    class Outer:
        train: TrainConfig = TrainConfig()
        inner: Inner = Inner()
        arms: tuple = (TrainConfig(steps=7),)
        n: int = 3

    assert [p for p, _ in train_configs(Outer())] == ["train", "inner.opt", "arms[0]"]


@pytest.mark.parametrize("exp_id", _ids())
def test_every_claim_says_its_full_scale_against_the_paper(exp_id):
    exp = EXPERIMENTS[exp_id]
    text = exp.full_scale.strip()
    assert text, f"{exp_id}: no full_scale (what its full budget is against the paper, or why it has none)"
    assert text.startswith(FORMS), f"{exp_id}: full_scale must start with one of {FORMS}: {text[:60]!r}"
    if "full" not in exp.configs:
        assert text.startswith("No full budget: "), f"{exp_id} has no full config: its full_scale must say why"
        return
    assert not text.startswith("No full budget"), f"{exp_id} has a full config, but its full_scale says it has none"
    assert "CPU-hour" in text, f"{exp_id}: full_scale must estimate the full run in CPU-hours"
    if text.startswith("Largest faithful scale"):
        assert "the paper:" in text and "why:" in text, f"{exp_id}: say what the paper does and why it differs"


@pytest.mark.parametrize("exp_id", _ids())
def test_every_full_run_checkpoints(exp_id):
    full = EXPERIMENTS[exp_id].configs.get("full")
    if full is None:
        pytest.skip("no full budget")
    if exp_id in NOT_RESUMABLE:
        assert "Not resumable yet" in EXPERIMENTS[exp_id].full_scale, f"{exp_id}: say it in full_scale"
        pytest.skip(NOT_RESUMABLE[exp_id])
    if _cpu_hours(EXPERIMENTS[exp_id].full_scale) < SHORT_H:
        pytest.skip(f"a full run of minutes (under {SHORT_H} CPU-hours): a rerun costs less than a checkpoint saves")
    off = [path for path, cfg in train_configs(full) if cfg.ckpt_every <= 0]
    assert not off, f"{exp_id}: full config's {off} never checkpoint (set ckpt_every: about 5-10 minutes of training)"

"""Every superposition experiment passes its checks at the smoke budget (each check is a relation a broken model
fails: counts of represented features, pentagon angles, phases, sticky fractions vs a shuffled baseline)."""

import pytest

from mlreads.core.registry import load_all
from mlreads.core.runner import run_experiment

IDS = sorted(i for i in load_all() if i.startswith("superposition/"))


def test_all_five_are_registered():
    assert IDS == [f"superposition/{x}" for x in
                   ("abs-computation", "dimensionality", "intro", "phase-diagram", "sparsity-sweep")]  # fmt: skip


@pytest.mark.parametrize("exp_id", IDS)
def test_smoke_checks_pass(exp_id, tmp_path):
    result = run_experiment(load_all()[exp_id], budget="smoke", seed=0, out=tmp_path, threads=1)
    failed = [c for c in result["checks"] if not c["passed"]]
    assert result["verdict"] == "pass", failed
    assert result["figures"] and all((tmp_path / exp_id / "smoke-s0" / f).stat().st_size > 0 for f in result["figures"])

"""Every registered experiment passes its checks at the smoke budget (DESIGN.md, "Budgets")."""

import pytest

from mlreads.core.registry import load_all
from mlreads.core.runner import run_experiment

EXPERIMENTS = sorted(load_all())


@pytest.mark.parametrize("exp_id", EXPERIMENTS)
def test_smoke(exp_id, tmp_path):
    exp = load_all()[exp_id]
    result = run_experiment(exp, "smoke", seed=0, out=tmp_path, threads=1)
    failed = [c for c in result["checks"] if not c["passed"]]
    assert not failed, f"{exp_id} smoke checks failed: {failed}"
    assert result["elapsed_s"] <= 30, f"{exp_id} smoke took {result['elapsed_s']:.0f}s; the budget is 30 s (DESIGN.md)"

"""Every registered experiment passes its checks at the smoke budget, within the smoke contract of 30 s on one thread
(README, "The experiments and what they measured").

The time is the process's CPU time, not wall time: the tests run two workers on a shared machine, and waiting for a
core is not the experiment's cost. With one torch thread, CPU time is the wall time the run takes on a quiet core.
"""

import time

import pytest

from mlreads.core.run.registry import load_all
from mlreads.core.run.runner import run_experiment

EXPERIMENTS = sorted(load_all())
SMOKE_BUDGET_S = 30.0


@pytest.mark.parametrize("exp_id", EXPERIMENTS)
def test_smoke(exp_id, tmp_path):
    exp = load_all()[exp_id]
    cpu0 = time.process_time()
    result = run_experiment(exp, "smoke", seed=0, out=tmp_path, threads=1)
    cpu_s = time.process_time() - cpu0
    failed = [c for c in result["checks"] if not c["passed"]]
    assert not failed, f"{exp_id} smoke checks failed: {failed}"
    assert cpu_s < SMOKE_BUDGET_S, f"{exp_id} smoke used {cpu_s:.0f} s of CPU; the budget is {SMOKE_BUDGET_S:.0f} s"

"""Every registered experiment passes its checks at the smoke budget, within the smoke contract of 30 s on one thread
(README, "The experiments and what they measured"), and keeps the models it trained: `mlreads.load_run` rebuilds
each from the run folder, giving the trained model's outputs bit for bit (core/run/saved.py), and `mlreads inspect`
shows each (mlreads/explore.py).

The time is the process's CPU time, not wall time: the tests run two workers on a shared machine, and waiting for a
core is not the experiment's cost. With one torch thread, CPU time is the wall time the run takes on a quiet core.
"""

import sys
import time
from pathlib import Path

import pytest

from mlreads import load_saved
from mlreads.core.run.registry import load_all
from mlreads.core.run.runner import RunContext, run_experiment
from mlreads.explore import inspect_run

sys.path.insert(0, str(Path(__file__).parent))
from model_inputs import assert_same_outputs  # noqa: E402

EXPERIMENTS = sorted(load_all())
SMOKE_BUDGET_S = 30.0
# The experiments that train no model (a closed form, a least-squares read-out, timings, a scalar online problem):
# every other one saves each model it trains (docs/learn.md).
TRAINS_NO_MODEL = {"mamba/discretization-cost", "s4/hippo-reconstruction", "adam/regret-counterexample",
                   "sophia/toy-2d", "ddpm/forward-process", "transformer/scaled-dot-product"}  # fmt: skip


@pytest.mark.parametrize("exp_id", EXPERIMENTS)
def test_smoke(exp_id, tmp_path, monkeypatch):
    exp = load_all()[exp_id]
    trained = {}
    save = RunContext.save_model

    def keep(ctx, arm, model, **meta):  # the trained model itself, to compare with the one rebuilt from the folder
        trained[arm] = model
        return save(ctx, arm, model, **meta)

    monkeypatch.setattr(RunContext, "save_model", keep)
    cpu0 = time.process_time()
    result = run_experiment(exp, "smoke", seed=0, out=tmp_path, threads=1)
    cpu_s = time.process_time() - cpu0
    failed = [c for c in result["checks"] if not c["passed"]]
    assert not failed, f"{exp_id} smoke checks failed: {failed}"
    assert cpu_s < SMOKE_BUDGET_S, f"{exp_id} smoke used {cpu_s:.0f} s of CPU; the budget is {SMOKE_BUDGET_S:.0f} s"
    assert bool(trained) != (exp_id in TRAINS_NO_MODEL), (
        f"{exp_id} saved {sorted(trained) or 'no model'}: an experiment that trains a model saves each arm with "
        "ctx.save_model(arm, model) (TRAINS_NO_MODEL lists those that train none)")
    if trained:
        loaded = load_saved(tmp_path / exp_id / "smoke-s0")
        assert sorted(loaded) == sorted(trained)
        for arm, saved in loaded.items():
            assert not saved.model.training
            assert_same_outputs(saved.cls, trained[arm], saved.model, saved.meta)
        shown = "\n".join(inspect_run(tmp_path / exp_id / "smoke-s0", out=tmp_path / "inspect", length=10, n=4))
        assert all(f"{arm}: {saved.cls}" in shown for arm, saved in loaded.items()), shown

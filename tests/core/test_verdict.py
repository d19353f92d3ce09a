"""Verdicts pass / fail / inconclusive (core/run/verdict.py): preconditions make a run inconclusive, a noisy check
passes or fails only by two standard errors, seeds are grouped by the experiment's seed rule, and result.json records
preconditions, intervals and CPU time."""

import json
import math
from dataclasses import replace

import numpy as np
import pytest

from mlreads import cli
from mlreads.core import stats
from mlreads.core.run import registry
from mlreads.core.run.registry import Experiment, at_least, at_most, equals, holds
from mlreads.core.run.results import BadResult, validate
from mlreads.core.run.verdict import (
    ALL_SEEDS,
    decide,
    noisy_outcome,
    paired_mean,
    verdict_line,
    why,
)


@pytest.mark.parametrize("op, value, bound, se, expected", [
    (">=", 99.9, 99, 0.4, "pass"),          # 99.1 .. 100.7: all above
    (">=", 98.6, 99, 0.4, "inconclusive"),  # 97.8 .. 99.4 straddles 99
    (">=", 97.0, 99, 0.4, "fail"),          # 96.2 .. 97.8: all below
    ("<=", 1.0, 2.0, 0.5, "pass"),          # 0 .. 2: touches the bound, still <= 2
    ("<=", 1.0, 2.0, 0.6, "inconclusive"),
    ("<", 1.0, 2.0, 0.5, "inconclusive"),   # strict: 2 is not < 2
    (">", 0.5, 0.5, None, "fail"),          # exactly half is not more than half
    (">=", 0.5, 0.5, None, "pass"),
    (">=", 0.5, 0.5, 0.0, "pass"),          # zero noise is the plain comparison
])  # fmt: skip
def test_the_power_rule_decides_by_two_standard_errors(op, value, bound, se, expected):
    result, interval = noisy_outcome(op, value, bound, se=se)
    assert result == expected
    if se is not None:
        assert interval == pytest.approx([value - 2 * se, value + 2 * se])


def test_an_interval_is_taken_as_given():
    assert noisy_outcome(">=", 98.0, 95.0, interval=(94.0, 99.0))[0] == "inconclusive"
    assert noisy_outcome(">=", 98.0, 95.0, interval=(95.5, 99.0))[0] == "pass"
    assert noisy_outcome("<=", 0.3, 0.2, interval=(0.25, 0.4))[0] == "fail"
    with pytest.raises(ValueError):
        noisy_outcome(">=", 1.0, 0.0, interval=(2.0, 1.0))


def _rec(passed, inconclusive=False):
    return {"name": "c", "passed": passed, **({"inconclusive": True} if inconclusive else {})}


def test_decide_puts_preconditions_first_then_failures_then_noise():
    ok, bad, noisy = _rec(True), _rec(False), _rec(False, inconclusive=True)
    assert decide([ok]) == "pass" and decide([ok], [ok]) == "pass"
    assert decide([ok], [bad]) == "inconclusive", "a failed precondition is never a pass"
    assert decide([bad], [bad]) == "inconclusive", "a failed precondition is never a fail"
    assert decide([bad, noisy]) == "fail" and decide([ok, noisy]) == "inconclusive"
    assert decide([ok], [noisy]) == "inconclusive", "a precondition within its noise is not established"


def test_checks_record_their_noise_and_interval():
    c = at_least("acc", 99, se="acc_se")
    assert c.expected == "acc >= 99 (by 2 s.e. (acc_se))"
    r = c.evaluate({"acc": 98.6, "acc_se": 0.4})
    assert r["passed"] is False and r["inconclusive"] is True and r["interval"] == pytest.approx([97.8, 99.4])
    assert r["se"] == 0.4 and r["relation"]["lhs_value"] == 98.6
    r = c.evaluate({"acc": 99.9, "acc_se": 0.4})
    assert r["passed"] is True and "inconclusive" not in r
    r = c.evaluate({"acc": 97.0, "acc_se": 0.4})
    assert r["passed"] is False and "inconclusive" not in r
    assert "missing metric 'acc_se'" in c.evaluate({"acc": 99.9})["measured"]
    assert c.evaluate({"acc": None, "acc_se": 0.4}) == {"name": c.name, "passed": False, "expected": c.expected,
                                                         "measured": "not measured: acc is None"}  # fmt: skip
    # two noisy sides, independent: their standard errors add in quadrature
    two = at_least("a", "b", se=("a_se", "b_se"))
    r = two.evaluate({"a": 9.9, "b": 9.0, "a_se": 0.3, "b_se": 0.4})
    assert r["se"] == pytest.approx(0.5) and r["inconclusive"] is True  # 0.9 < 2 x 0.5
    assert two.evaluate({"a": 10.1, "b": 9.0, "a_se": 0.3, "b_se": 0.4})["passed"] is True
    ci = at_most("err", 5.0, ci="err_ci").evaluate({"err": 3.0, "err_ci": [1.0, 5.5]})
    assert ci["inconclusive"] is True and ci["interval"] == [1.0, 5.5] and "se" not in ci
    strict = at_least("frac", 0.5, strict=True)
    assert strict.expected == "frac > 0.5" and strict.evaluate({"frac": 0.5})["passed"] is False
    assert strict.evaluate({"frac": 0.625})["passed"] is True
    with pytest.raises(ValueError):
        at_least("a", 1, se="a_se", ci="a_ci")


def test_existing_check_texts_are_unchanged():
    """Pre-registered checks are compared by their text (stale_reasons): the noise-free forms read as before."""
    assert at_least("a", "b", margin=10).expected == "a >= b + 10"
    assert at_most("loss", 2.0, margin=0.5).expected == "loss <= 2.0 - 0.5"
    assert at_most("loss", 2.0).expected == "loss <= 2.0" and equals("n", 5).expected == "n == 5"


def _exp(toy, **changes) -> Experiment:
    return replace(toy, **changes)


def test_a_failed_precondition_makes_the_run_inconclusive(toy, tmp_path, capsys, monkeypatch):
    """End to end through the runner: result.json records the preconditions in the checks' form, the verdict, the
    verdict line and the exit code (1, like a fail)."""
    exp = _exp(toy, checks={**toy.checks, "quick": [at_least("value", 0.1)]},
               preconditions={"quick": [holds("rising", "the toy value rose above 1 (the check measures nothing else)")]})  # fmt: skip
    monkeypatch.setitem(registry.REGISTRY, exp.id, exp)
    code = cli.main(["run", exp.id, "--budget", "quick", "--out", str(tmp_path)])
    out = capsys.readouterr().out
    result = json.loads((tmp_path / exp.id / "quick-s0" / "result.json").read_text())
    assert code == 1 and out.startswith("INCONCLUSIVE toytest/threshold") and "NOT MET" in out
    assert "value 0.5 >= 0.1: ok (not judged)" in out, "a check does not count while a precondition is not met"
    assert result["verdict"] == "inconclusive" and result["checks"][0]["passed"] is True
    [pre] = result["preconditions"]
    assert pre == {"name": "rising", "passed": False, "measured": False,
                   "expected": "the toy value rose above 1 (the check measures nothing else)"}
    assert why(result).startswith("precondition failed: the toy value rose above 1")
    assert isinstance(result["cpu_s"], float) and result["cpu_s"] >= 0 and result["elapsed_s"] >= 0
    assert validate(result)["preconditions"] == [dict(pre, relation=None)]
    # the same run with the precondition met is a pass, exit 0
    cli.main(["run", exp.id, "--budget", "quick", "--out", str(tmp_path), "--set", "value=2"])
    assert capsys.readouterr().out.startswith("PASS toytest/threshold")


def test_the_verdict_line_marks_checks_within_noise():
    result = {"id": "x/y", "budget": "quick", "seed": 0, "elapsed_s": 1.0, "cpu_s": 0.5, "verdict": "inconclusive",
              "preconditions": [], "checks": [at_least("acc", 99, se="acc_se").evaluate({"acc": 98.6, "acc_se": 0.4})]}
    line = verdict_line(result)
    assert line.startswith("INCONCLUSIVE x/y [quick, seed 0, 1.0s, 0.5s CPU]") and "acc 98.6 [97.8, 99.4] >= 99" in line
    assert "WITHIN NOISE" in line and why(result).startswith("within 2 s.e.: acc 98.6 [97.8, 99.4] >= 99")


def _entry(**changes) -> dict:
    e = {"id": "toytest/threshold", "budget": "quick", "seed": 0, "verdict": "pass", "metrics": {"value": 2.0},
         "checks": [{"name": "value >= 1", "passed": True, "measured": 2.0, "expected": "value >= 1"}]}
    e.update(changes)
    return e


def test_results_without_preconditions_still_load_and_verdicts_must_agree_with_their_records():
    old = validate(_entry())  # a published entry from before preconditions existed
    assert old["preconditions"] == [] and old["cpu_s"] is None
    bad_pre = [{"name": "ready", "passed": False, "measured": False, "expected": "ready"}]
    assert validate(_entry(verdict="inconclusive", preconditions=bad_pre))["verdict"] == "inconclusive"
    with pytest.raises(BadResult, match="its checks and preconditions give 'inconclusive'"):
        validate(_entry(preconditions=bad_pre))  # a 'pass' despite a failed precondition
    with pytest.raises(BadResult, match="'verdict' must be one of pass, fail, inconclusive"):
        validate(_entry(verdict="maybe"))
    with pytest.raises(BadResult, match="'inconclusive' must be a boolean, and false when it passed"):
        validate(_entry(checks=[{"name": "c", "passed": True, "inconclusive": True}]))
    with pytest.raises(BadResult, match="'interval' must be"):
        validate(_entry(checks=[{"name": "c", "passed": True, "interval": [1]}]))


def test_seed_rules():
    def e(seed, verdict, diff=None, pre=True):
        return {"seed": seed, "verdict": verdict, "metrics": {"diff": diff},
                "preconditions": [{"name": "p", "passed": pre}]}  # fmt: skip

    assert ALL_SEEDS.combine([e(0, "pass"), e(1, "pass")])[0] == "reproduced"
    assert ALL_SEEDS.combine([e(0, "pass"), e(1, "fail")])[0] == "mixed"
    assert ALL_SEEDS.combine([e(0, "pass"), e(1, "inconclusive")])[0] == "inconclusive"
    assert ALL_SEEDS.combine([e(0, "fail"), e(1, "inconclusive")])[0] == "not reproduced"
    rule = paired_mean("diff")
    assert rule.text == "the mean over seeds of diff > 0 by 2 standard errors"
    word, detail = rule.combine([e(0, "pass", 1.0), e(1, "pass", 1.2), e(2, "fail", 0.9)])
    assert word == "reproduced" and detail.startswith("mean diff = 1.033 [") and "over 3 seeds" in detail
    assert rule.combine([e(0, "pass", 1.0), e(1, "fail", -0.8), e(2, "pass", 0.3)])[0] == "inconclusive"
    assert rule.combine([e(0, "fail", -1.0), e(1, "fail", -1.2), e(2, "fail", -0.9)])[0] == "not reproduced"
    # a seed whose preconditions fail measured nothing: it is left out, and one seed has no standard error
    word, detail = rule.combine([e(0, "pass", 1.0), e(1, "inconclusive", 5.0, pre=False)])
    assert word == "inconclusive" and "at least 2" in detail


def test_stats_helpers():
    lo, hi = stats.wilson(8, 8)
    assert hi == 1.0 and 0.6 < lo < 0.7, "8 of 8 is far from proving >= 99%"
    lo, hi = stats.wilson(0, 10)
    assert lo == 0.0 and 0.2 < hi < 0.35
    m = stats.proportion("acc", [True] * 95 + [False] * 5, scale=100)
    assert m["acc"] == 95.0 and m["acc_se"] == pytest.approx(100 * math.sqrt(0.95 * 0.05 / 100))
    assert m["acc_ci"][0] < 95 < m["acc_ci"][1] <= 100 and m["acc_n"] == 100
    p = stats.paired("diff", [1.0, 2.0, 3.0], [0.5, 1.0, 2.5])
    assert p["diff"] == pytest.approx(2 / 3) and p["diff_se"] == pytest.approx(np.std([0.5, 1, 0.5], ddof=1) / math.sqrt(3))
    b = stats.bootstrap("med", np.arange(100.0), np.median, n_boot=200, seed=1)
    assert b == stats.bootstrap("med", np.arange(100.0), np.median, n_boot=200, seed=1), "seeded: reproducible"
    assert b["med_ci"][0] < 49.5 < b["med_ci"][1] and b["med_se"] > 0
    assert stats.interval_of({"x": 1.0, "x_se": 0.25}, "x") == [0.5, 1.5]
    assert stats.interval_of({"x": 1.0, "x_ci": [0.1, 2.0], "x_se": 9.0}, "x") == [0.1, 2.0]
    assert stats.interval_of({"x": 1.0}, "x") is None

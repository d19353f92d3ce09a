"""Verdicts: pass, fail or inconclusive, decided here and nowhere else.

A verdict is about the paper, not about our test. One run's verdict (`decide`) is

- **inconclusive** when a *precondition* fails: the conditions under which the checks measure the claim do not hold
  (the target was never reached, the model does not beat a trivial baseline), so the run says nothing either way;
- otherwise **fail** when a check fails by more than its noise;
- otherwise **inconclusive** when a check lies within its noise;
- otherwise **pass**.

**The power rule** (`noisy_outcome`). A check on a noisy quantity declares its noise: a standard error (`se=`, from
seeds, paired seeds or the evaluation set; see core/stats.py) or an interval of its measured side (`ci=`). It passes or
fails only by a margin of at least two standard errors (`Z`): the interval `value ± 2 s.e.` must lie wholly on one
side of the bound; closer is inconclusive, and the record keeps the interval.

**Across seeds** (`SeedRule`). An experiment declares how its seeds' runs make the claim's verdict at a budget:
`ALL_SEEDS` (the default: every seed passes) or `paired_mean(metric)` (the mean of a per-seed metric, e.g. a paired
difference, beyond its bound by two standard errors over seeds). The ledger, the README table and the report apply
it; the claim's page shows it.

Claim-level words (`WORDS`): a pass reads "reproduced", a fail "not reproduced", an inconclusive "inconclusive"; seeds
that disagree under `ALL_SEEDS` read "mixed". The command line's exit code for a run: 0 pass, 1 fail or inconclusive
(`EXIT`; cli.py's docstring says why).
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from mlreads.core.stats import (
    Z,  # a check passes or fails only by at least Z standard errors
)

VERDICTS = ("pass", "fail", "inconclusive")
WORDS = {"pass": "reproduced", "fail": "not reproduced", "inconclusive": "inconclusive"}
EXIT = {"pass": 0, "fail": 1, "inconclusive": 1}
LIMIT_S = {"smoke": 30.0, "quick": 600.0}  # the budgets' wall-time limits (README, "The experiments"); full has none


# ---------------------------------------------------------------------------------------------- one check


def compare(op: str, value: float, bound: float) -> bool:
    return {">=": value >= bound, ">": value > bound, "<=": value <= bound, "<": value < bound}[op]


def noisy_outcome(op: str, value: float, bound: float, se: float | None = None,
                  interval: Sequence[float] | None = None) -> tuple[str, list[float] | None]:  # fmt: skip
    """('pass' | 'fail' | 'inconclusive', the interval used) for `value op bound` under noise.

    `interval` (lo, hi) is taken as given (a Wilson or bootstrap interval); otherwise `se` makes `value ± Z se`. The
    check passes when the whole interval satisfies the relation, fails when the whole interval violates it, and is
    inconclusive when the interval straddles the bound. Without noise it is the plain comparison."""
    if interval is None and se is not None:
        se = float(se)
        if not math.isfinite(se) or se < 0:
            raise ValueError(f"a standard error must be a finite number >= 0, got {se}")
        interval = (value - Z * se, value + Z * se)
    if interval is None:
        return ("pass" if compare(op, value, bound) else "fail"), None
    lo, hi = (float(x) for x in interval)
    if not lo <= hi:
        raise ValueError(f"an interval must have lo <= hi, got [{lo}, {hi}]")
    best, worst = (lo, hi) if op in ("<=", "<") else (hi, lo)  # the interval's end nearest to passing, and farthest
    if compare(op, worst, bound):
        return "pass", [lo, hi]
    return ("inconclusive" if compare(op, best, bound) else "fail"), [lo, hi]


def outcome(record: Mapping[str, Any]) -> str:
    """A recorded check's or precondition's outcome: 'pass', 'fail', or 'inconclusive' (within its noise)."""
    if record.get("passed"):
        return "pass"
    return "inconclusive" if record.get("inconclusive") else "fail"


# ---------------------------------------------------------------------------------------------- one run


def decide(checks: Sequence[Mapping], preconditions: Sequence[Mapping] = ()) -> str:
    """The run's verdict from its recorded checks and preconditions (see the module docstring)."""
    if any(outcome(p) != "pass" for p in preconditions):
        return "inconclusive"
    outcomes = [outcome(c) for c in checks]
    if "fail" in outcomes:
        return "fail"
    return "inconclusive" if "inconclusive" in outcomes else "pass"


def judge(exp, budget: str, metrics: Mapping[str, Any]) -> dict:
    """Evaluate an experiment's preconditions and checks at `budget` on a run's metrics: the `preconditions`,
    `checks` and `verdict` of its result.json."""
    checks = [c.evaluate(metrics) for c in exp.checks[budget]]
    preconditions = [c.evaluate(metrics) for c in exp.preconditions.get(budget, ())]
    return {"checks": checks, "preconditions": preconditions, "verdict": decide(checks, preconditions)}


def reasons(result: Mapping) -> list[tuple[str, dict]]:
    """Why a run is not a pass: ('precondition', record) for each failed precondition when there is one (they make it
    inconclusive), else ('check', record) for each failed check, else ('within noise', record) for each check within
    its noise. Empty for a pass."""
    pre = [("precondition", p) for p in result.get("preconditions") or () if outcome(p) != "pass"]
    if pre:
        return pre
    checks = result.get("checks") or ()
    failed = [("check", c) for c in checks if outcome(c) == "fail"]
    return failed or [("within noise", c) for c in checks if outcome(c) == "inconclusive"]


def why(result: Mapping) -> str:
    """One line: the failing precondition or check with both its sides (and its interval); empty for a pass."""
    from mlreads.core.fmt import evidence

    found = reasons(result)
    if not found:
        return ""
    kind = found[0][0]
    label = {"precondition": "precondition failed", "check": "check failed", "within noise": "within 2 s.e."}[kind]
    return f"{label}: " + "; ".join(evidence(r) for _, r in found)


def over_budget(result: Mapping) -> str:
    """A line when a smoke or quick run took longer than its budget's wall-time limit; empty otherwise."""
    from mlreads.core.fmt import duration

    limit = LIMIT_S.get(result.get("budget", ""))
    elapsed = result.get("elapsed_s") or 0.0
    if limit is None or elapsed <= limit:
        return ""
    cpu = result.get("cpu_s")
    cpu_text = f", {duration(cpu)} of CPU time" if isinstance(cpu, int | float) else ""
    return (f"over the {result['budget']} budget: {duration(elapsed)} of wall time{cpu_text}, against a limit of "
            f"{duration(limit)}")  # fmt: skip


def status(result: Mapping) -> tuple[str, str]:
    """(css class, word) of one run's own verdict. Smoke runs are pipeline checks, never 'pass' or 'reproduced'."""
    v = result["verdict"]
    if result["budget"] == "smoke":
        return {"pass": ("pipe-ok", "pipeline ok"), "fail": ("pipe-broken", "pipeline broken"),
                "inconclusive": ("inconclusive", "pipeline inconclusive")}[v]  # fmt: skip
    return v, v


def verdict_line(result: dict) -> str:
    """One line per run: PASS / FAIL / INCONCLUSIVE, the run, each precondition and check with both sides of its
    relation. A smoke run is labelled as what it is: a pipeline check, not a reproduction of the claim."""
    from mlreads.core.fmt import evidence

    word = result["verdict"].upper()
    mark = {"pass": "ok", "fail": "FAILED", "inconclusive": "WITHIN NOISE"}
    parts = [f"precondition {evidence(p)}: {'ok' if outcome(p) == 'pass' else 'NOT MET'}"
             for p in result.get("preconditions") or ()]  # fmt: skip
    unjudged = any(outcome(p) != "pass" for p in result.get("preconditions") or ())
    parts += [f"{evidence(c)}: {mark[outcome(c)]}" + (" (not judged)" if unjudged else "") for c in result["checks"]]
    kind = " (pipeline check, not a reproduction)" if result["budget"] == "smoke" else ""
    cpu = f", {result['cpu_s']:.1f}s CPU" if isinstance(result.get("cpu_s"), int | float) else ""
    return (f"{word} {result['id']} [{result['budget']}{kind}, seed {result['seed']}, {result['elapsed_s']:.1f}s"
            f"{cpu}]: " + "; ".join(parts))  # fmt: skip


# ---------------------------------------------------------------------------------------------- across seeds


@dataclass(frozen=True)
class SeedRule:
    """How the runs of several seeds make one claim's verdict at one budget.

    `metric` None: every seed must pass (`ALL_SEEDS`). Otherwise the mean of `metrics[metric]` over the seeds whose
    preconditions hold must satisfy `op bound` by `Z` standard errors of that mean (`paired_mean`)."""

    text: str  # shown on the claim's page
    metric: str | None = None
    op: str = ">"
    bound: float = 0.0

    def combine(self, entries: Sequence[Mapping]) -> tuple[str, str]:
        """(word, detail): word is 'reproduced', 'not reproduced', 'inconclusive' or 'mixed'."""
        if self.metric is None:
            return _all_seeds(entries), ""
        usable = [e for e in entries if all(outcome(p) == "pass" for p in e.get("preconditions") or ())]
        values = [e.get("metrics", {}).get(self.metric) for e in usable]
        values = [float(v) for v in values if isinstance(v, int | float) and not isinstance(v, bool)]
        if len(values) < 2:
            return "inconclusive", (f"{len(values)} seed(s) with a {self.metric} and their preconditions met: a "
                                    "standard error needs at least 2")  # fmt: skip
        mean = statistics.fmean(values)
        se = statistics.stdev(values) / math.sqrt(len(values))
        result, (lo, hi) = noisy_outcome(self.op, mean, self.bound, se=se)
        from mlreads.core.fmt import num

        detail = (f"mean {self.metric} = {num(mean)} [{num(lo)}, {num(hi)}] (± {Z:g} s.e. over {len(values)} seeds) "
                  f"{self.op} {num(self.bound)}")  # fmt: skip
        return WORDS[result], detail


ALL_SEEDS = SeedRule("every seed passes (a seed that fails makes the claim mixed or not reproduced; seeds that are "
                     "inconclusive and none failing make it inconclusive)")  # fmt: skip


def paired_mean(metric: str, op: str = ">", bound: float = 0.0, text: str | None = None) -> SeedRule:
    """The claim holds when the mean over seeds of `metric` (say a paired difference between two arms that share
    init and data order) satisfies `op bound` by two standard errors of the mean."""
    if op not in (">", ">=", "<", "<="):
        raise ValueError(f"paired_mean: op must be one of > >= < <=, got {op!r}")
    return SeedRule(text or f"the mean over seeds of {metric} {op} {bound:g} by {Z:g} standard errors", metric, op,
                    float(bound))  # fmt: skip


def _all_seeds(entries: Sequence[Mapping]) -> str:
    verdicts = [e["verdict"] for e in entries]
    n_pass, n_fail = verdicts.count("pass"), verdicts.count("fail")
    if n_pass == len(verdicts):
        return "reproduced"
    if n_fail and n_pass:
        return "mixed"
    return "not reproduced" if n_fail else "inconclusive"

"""Experiments as declarations: what a paper claims, its number, a config per budget, a run function and checks.

A paper's `experiments.py` calls `register(Experiment(...))`; what the experiment cites, and which package holds it,
come from core/papers.py. The runner (core/run/runner.py) does everything else: seeding, threads, output folders,
result.json, figures and the verdict.

A `Check` is a relation on the metrics that `run` returns (a bound, an ordering, a trend) and must be able to fail:

    at_most("val_loss", 2.0)                         # metrics["val_loss"] <= 2.0
    at_least("acc_hippo", "acc_random", margin=15)   # one metric beats another by a margin
    holds("monotone", "the count never falls by more than 1 as S rises")  # a boolean the run computed
"""

from __future__ import annotations

import difflib
import importlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from mlreads.core.errors import UserError
from mlreads.core.papers import PACKAGES, citation

BUDGETS = ("smoke", "quick", "full")


@dataclass(frozen=True)
class Relation:
    """The two sides of a check: `lhs op rhs (+/- margin)`, where `rhs` is a number or another metric's name."""

    op: str  # "<=", ">=", "=="
    lhs: str  # a metric name
    rhs: str | float | Any
    margin: float = 0.0  # added to the right side: at_least(a, b, margin=10) is a >= b + 10, at_most(a, b, 1) is a <= b - 1

    def values(self, metrics: Mapping[str, Any]) -> dict:
        """Both sides with their values, as recorded in result.json: the evidence the report shows."""
        lhs_value = _plain(metrics[self.lhs])
        rhs_value = _plain(metrics[self.rhs]) if isinstance(self.rhs, str) else _plain(self.rhs)
        return {"op": self.op, "lhs": self.lhs, "lhs_value": lhs_value,
                "rhs": self.rhs if isinstance(self.rhs, str) else None, "rhs_value": rhs_value,
                "margin": self.margin}  # fmt: skip


@dataclass(frozen=True)
class Check:
    """A named relation on the metrics. `fn(metrics) -> (passed, measured)`; `expected` says it in words.

    Checks built by `at_most`, `at_least` and `equals` carry their `relation`, so `evaluate` records both sides with
    their values (`acc_hippo 53.1 >= acc_random 41.0 + 10`), not only the left one."""

    name: str
    expected: str
    fn: Callable[[Mapping[str, Any]], tuple[bool, Any]]
    relation: Relation | None = None

    def evaluate(self, metrics: Mapping[str, Any]) -> dict:
        out = {"name": self.name, "passed": False, "measured": None, "expected": self.expected}
        try:
            passed, measured = self.fn(metrics)
            out.update(passed=bool(passed), measured=_plain(measured))
        except KeyError as e:
            out["measured"] = f"missing metric {e.args[0]!r}"
            return out
        except (TypeError, ValueError) as e:  # a metric of the wrong kind (a list where a number is compared)
            out["measured"] = f"cannot evaluate: {e}"
            return out
        if self.relation is not None:
            try:
                out["relation"] = self.relation.values(metrics)
            except KeyError:
                pass
        return out


def _value(metrics: Mapping[str, Any], ref: str | float) -> float:
    return float(metrics[ref]) if isinstance(ref, str) else float(ref)


def at_most(metric: str, bound: str | float, margin: float = 0.0, name: str | None = None) -> Check:
    """metrics[metric] <= bound - margin, where bound is a number or another metric's name."""
    rhs = f"{bound}" + (f" - {margin}" if margin else "")

    def fn(m):
        v = float(m[metric])
        return v <= _value(m, bound) - margin, v

    return Check(name or f"{metric} <= {rhs}", f"{metric} <= {rhs}", fn, Relation("<=", metric, bound, -margin))


def at_least(metric: str, bound: str | float, margin: float = 0.0, name: str | None = None) -> Check:
    """metrics[metric] >= bound + margin, where bound is a number or another metric's name."""
    rhs = f"{bound}" + (f" + {margin}" if margin else "")

    def fn(m):
        v = float(m[metric])
        return v >= _value(m, bound) + margin, v

    return Check(name or f"{metric} >= {rhs}", f"{metric} >= {rhs}", fn, Relation(">=", metric, bound, margin))


def holds(metric: str, expected: str, name: str | None = None) -> Check:
    """metrics[metric] is true: for relations (trends, counts, geometry) the run computes itself."""
    return Check(name or metric, expected, lambda m: (bool(m[metric]), bool(m[metric])))


def equals(metric: str, value: Any, name: str | None = None) -> Check:
    """metrics[metric] == value (counts, phases)."""
    return Check(name or f"{metric} == {value}", f"{metric} == {value}", lambda m: (m[metric] == value, m[metric]),
                 Relation("==", metric, value))


@dataclass(frozen=True)
class Experiment:
    """One claim of one paper, re-measured. See the module docstring."""

    id: str  # "<paper>/<slug>": the prefix is a key of core/papers.py's reading list
    claim: str  # one sentence, from CLAIMS.md
    paper_value: str  # the paper's own number, as text
    configs: Mapping[str, Any]  # budget -> frozen dataclass config
    run: Callable[[Any, Any], dict]  # run(cfg, ctx: RunContext) -> metrics
    checks: Mapping[str, Sequence[Check]]  # budget -> checks
    requires: tuple[str, ...] = ()  # data the run needs: "mnist", "text"
    headline: str = ""  # the metric shown as "measured" in the claims table
    notes: str = ""  # notes on the reading list and deviations, shown on the report page
    tags: tuple[str, ...] = field(default_factory=tuple)
    source: str = ""  # a key of core.papers.SOURCES when the claim is another source's than the prefix's paper's
    # What it cites (result.json's "paper"). Left empty, it comes from core/papers.py (`citation(id, source)`), the
    # one place for paper metadata; only an id outside the reading list (a test's toy) writes its own.
    paper: str = ""

    def __post_init__(self):
        if "/" not in self.id:
            raise ValueError(f"experiment id {self.id!r} must be '<paper>/<slug>'")
        if not self.paper:
            try:
                object.__setattr__(self, "paper", citation(self.id, self.source))
            except KeyError as e:
                raise ValueError(f"{self.id}: no paper for it in core/papers.py ({e.args[0]!r} is neither a reading "
                                 "list prefix nor a SOURCES key)") from None  # fmt: skip
        for budget in self.configs:
            if budget not in BUDGETS:
                raise ValueError(f"{self.id}: unknown budget {budget!r}")
            if not self.checks.get(budget):
                raise ValueError(f"{self.id}: budget {budget!r} has no checks; every budget needs one that can fail")

    @property
    def budgets(self) -> tuple[str, ...]:
        return tuple(b for b in BUDGETS if b in self.configs)


REGISTRY: dict[str, Experiment] = {}


def register(exp: Experiment) -> Experiment:
    old = REGISTRY.get(exp.id)
    # A module imported again (reload, or a retry after a failed import) replaces its own entries.
    if old is not None and old is not exp and old.run.__module__ != exp.run.__module__:
        raise ValueError(f"experiment {exp.id!r} is registered twice (by {old.run.__module__} and {exp.run.__module__})")
    REGISTRY[exp.id] = exp
    return exp


def load_all() -> dict[str, Experiment]:
    """Import the `experiments` module of every package on the reading list (core/papers.py), which registers them."""
    for package in PACKAGES:
        importlib.import_module(f"mlreads.{package}.experiments")
    return REGISTRY


def select(patterns: Sequence[str]) -> list[Experiment]:
    """Experiments matching ids, prefixes ending in '/', or 'all'. An unknown id raises UserError with a hint."""
    registry = load_all()
    chosen: dict[str, Experiment] = {}
    for pat in patterns:
        if pat == "all":
            hits = list(registry)
        elif pat in registry:
            hits = [pat]
        else:
            hits = [i for i in registry if i.startswith(pat if pat.endswith("/") else pat + "/")]
        if not hits:
            near = difflib.get_close_matches(pat, list(registry), n=1, cutoff=0.4)
            hint = f"; did you mean {near[0]!r}?" if near else "; see 'mlreads list'"
            raise UserError(f"unknown experiment {pat!r}{hint}")
        for i in sorted(hits):
            chosen[i] = registry[i]
    return list(chosen.values())


def _plain(x: Any) -> Any:
    """Turn tensors and numpy scalars into plain JSON values."""
    if hasattr(x, "tolist"):
        return x.tolist()
    if isinstance(x, float | int | str | bool) or x is None:
        return x
    if isinstance(x, Mapping):
        return {str(k): _plain(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_plain(v) for v in x]
    return str(x)

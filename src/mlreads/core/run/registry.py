"""Experiments as declarations: what a paper claims, its number, a config per budget, a run function and checks.

A paper's `experiments.py` calls `register(Experiment(...))`; what the experiment cites, and which package holds it,
come from core/papers.py. The runner (core/run/runner.py) does everything else: seeding, threads, output folders,
result.json, figures and the verdict.

A `Check` is a relation on the metrics that `run` returns (a bound, an ordering, a trend) and must be able to fail:

    at_most("val_loss", 2.0)                         # metrics["val_loss"] <= 2.0
    at_least("acc_hippo", "acc_random", margin=15)   # one metric beats another by a margin
    at_least("frac_copying", 0.5, strict=True)       # more than half: frac_copying > 0.5
    holds("monotone", "the count never falls by more than 1 as S rises")  # a boolean the run computed
    at_least("acc", 99, ci="acc_ci")                 # noisy: the whole interval must clear 99 (core/stats.py)
    at_least("diff", 0, se="diff_se")                # noisy: diff - 2 se >= 0 to pass, diff + 2 se < 0 to fail

An experiment also declares `preconditions` (the same Check objects, per budget): the conditions under which its
checks measure the claim. A failed precondition makes the run `inconclusive`, never `fail`; so does a noisy check
closer to its bound than two standard errors. The rules live in core/run/verdict.py, with the `seed_rule` that
turns several seeds' runs into the claim's verdict (`ALL_SEEDS` by default, or `paired_mean(metric)`).
"""

from __future__ import annotations

import difflib
import importlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from mlreads.core.errors import UserError
from mlreads.core.papers import PACKAGES, citation, reading_key
from mlreads.core.run.verdict import ALL_SEEDS, SeedRule, compare, noisy_outcome

BUDGETS = ("smoke", "quick", "full")


@dataclass(frozen=True)
class Relation:
    """The two sides of a check: `lhs op rhs (+/- margin)`, where `rhs` is a number or another metric's name."""

    op: str  # "<=", ">=", "<", ">", "=="
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
class Noise:
    """What a noisy check must beat: `se` (a metric name, a number, or several combined in quadrature as independent)
    is the standard error of the comparison; `ci` names a metric holding an interval [lo, hi] of the left side."""

    se: str | float | tuple | None = None
    ci: str | None = None

    def __post_init__(self):
        if (self.se is None) == (self.ci is None):
            raise ValueError("a noisy check takes exactly one of se= and ci=")

    def words(self) -> str:
        if self.ci is not None:
            return f"its interval {self.ci} must clear the bound"
        parts = self.se if isinstance(self.se, tuple | list) else (self.se,)
        return f"by 2 s.e. ({' (+) '.join(str(p) for p in parts)})"

    def resolve(self, metrics: Mapping[str, Any]) -> tuple[float | None, list[float] | None]:
        """(standard error, interval) from the metrics; KeyError when a named metric is missing."""
        if self.ci is not None:
            lo, hi = metrics[self.ci]
            return None, [float(lo), float(hi)]
        parts = self.se if isinstance(self.se, tuple | list) else (self.se,)
        return sum(_value(metrics, p) ** 2 for p in parts) ** 0.5, None


@dataclass(frozen=True)
class Check:
    """A named relation on the metrics. `fn(metrics) -> (passed, measured)`; `expected` says it in words.

    Checks built by `at_most`, `at_least` and `equals` carry their `relation`, so `evaluate` records both sides with
    their values (`acc_hippo 53.1 >= acc_random 41.0 + 10`), not only the left one. A check with `noise` decides by
    the power rule (core/run/verdict.py): its record gets `interval` (and `se`), and `inconclusive: true` when the
    interval straddles the bound."""

    name: str
    expected: str
    fn: Callable[[Mapping[str, Any]], tuple[bool, Any]]
    relation: Relation | None = None
    noise: Noise | None = None

    def evaluate(self, metrics: Mapping[str, Any]) -> dict:
        out = {"name": self.name, "passed": False, "measured": None, "expected": self.expected}
        unmeasured = [k for k in self._operands() if k in metrics and metrics[k] is None]
        if unmeasured:  # a metric the run could not measure (no crossing, say): the check cannot pass
            out["measured"] = f"not measured: {', '.join(unmeasured)} is None"
            return out
        try:
            passed, measured = self.fn(metrics)
            out.update(passed=bool(passed), measured=_plain(measured))
            if self.noise is not None and self.relation is not None:
                out.update(self._noisy(metrics))
        except KeyError as e:
            out.update(passed=False, measured=f"missing metric {e.args[0]!r}")
            return out
        except (TypeError, ValueError) as e:  # a metric of the wrong kind (a list where a number is compared)
            out.update(passed=False, measured=f"cannot evaluate: {e}")
            return out
        if self.relation is not None:
            try:
                out["relation"] = self.relation.values(metrics)
            except KeyError:
                pass
        return out

    def _operands(self) -> list[str]:
        rel = self.relation
        return [] if rel is None else [rel.lhs] + ([rel.rhs] if isinstance(rel.rhs, str) else [])

    def _noisy(self, metrics: Mapping[str, Any]) -> dict:
        rel = self.relation
        se, interval = self.noise.resolve(metrics)
        result, used = noisy_outcome(rel.op, float(metrics[rel.lhs]), _value(metrics, rel.rhs) + rel.margin, se, interval)
        out = {"passed": result == "pass", "interval": used}
        if se is not None:
            out["se"] = se
        if result == "inconclusive":
            out["inconclusive"] = True
        return out


def _value(metrics: Mapping[str, Any], ref: str | float) -> float:
    return float(metrics[ref]) if isinstance(ref, str) else float(ref)


def _compare(op: str, metric: str, bound: str | float, margin: float, name: str | None, se, ci) -> Check:
    """`metric op bound + margin` (margin signed), noisy when `se` or `ci` is given."""
    rhs = f"{bound}" + (f" {'+' if margin > 0 else '-'} {abs(margin)}" if margin else "")
    noise = Noise(se, ci) if se is not None or ci is not None else None
    expected = f"{metric} {op} {rhs}" + (f" ({noise.words()})" if noise else "")

    def fn(m):
        v = float(m[metric])
        return compare(op, v, _value(m, bound) + margin), v

    return Check(name or expected, expected, fn, Relation(op, metric, bound, margin), noise)


def at_most(metric: str, bound: str | float, margin: float = 0.0, name: str | None = None, *,
            se: str | float | tuple | None = None, ci: str | None = None, strict: bool = False) -> Check:  # fmt: skip
    """metrics[metric] <= bound - margin (`<` with strict), where bound is a number or another metric's name.
    `se`/`ci` declare the noise the check must beat (see `Noise`)."""
    return _compare("<" if strict else "<=", metric, bound, -margin, name, se, ci)


def at_least(metric: str, bound: str | float, margin: float = 0.0, name: str | None = None, *,
             se: str | float | tuple | None = None, ci: str | None = None, strict: bool = False) -> Check:  # fmt: skip
    """metrics[metric] >= bound + margin (`>` with strict), where bound is a number or another metric's name.
    `se`/`ci` declare the noise the check must beat (see `Noise`)."""
    return _compare(">" if strict else ">=", metric, bound, margin, name, se, ci)


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
    claim: str  # one sentence, worded as what the checks measure
    paper_value: str  # the paper's own number, as text
    configs: Mapping[str, Any]  # budget -> frozen dataclass config
    run: Callable[[Any, Any], dict]  # run(cfg, ctx: RunContext) -> metrics
    checks: Mapping[str, Sequence[Check]]  # budget -> checks
    preconditions: Mapping[str, Sequence[Check]] = field(default_factory=dict)  # budget -> when the checks measure the claim
    seed_rule: SeedRule = ALL_SEEDS  # how several seeds' runs make the claim's verdict (core/run/verdict.py)
    requires: tuple[str, ...] = ()  # data the run needs: "mnist", "text"
    headline: str = ""  # the metric shown as "measured" in the claims table
    notes: str = ""  # notes on the reading list and deviations, shown on the report page
    tags: tuple[str, ...] = field(default_factory=tuple)
    source: str = ""  # a key of core.papers.SOURCES when the claim is another source's than the prefix's paper's
    # What it cites (result.json's "paper"). Left empty, it comes from core/papers.py (`citation(id, source)`), the
    # one place for paper metadata; only an id outside the reading list (a test's toy) writes its own.
    paper: str = ""
    # budget -> the torch threads a run uses unless --threads says otherwise (1 where absent). Only where a step was
    # measured faster with more threads on the 2-core machine (quick's budget is wall time); smoke stays at 1 (tests).
    threads: Mapping[str, int] = field(default_factory=dict)
    # The full budget against the paper, in a sentence or three: "The paper's recipe: ..." where it fits in about two
    # hours on the 2-core CPU; otherwise the largest faithful scale that fits, what differs from the paper and why
    # (e.g. "ImageNet and 90 epochs need a GPU; this is ..."); for an experiment with no full config, why it has none.
    full_scale: str = ""

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
        for budget in self.preconditions:
            if budget not in self.configs:
                raise ValueError(f"{self.id}: preconditions for {budget!r}, a budget it does not have")
        for budget, n in self.threads.items():
            if budget not in self.configs or budget == "smoke" or not isinstance(n, int) or n < 1:
                raise ValueError(f"{self.id}: threads[{budget!r}] = {n!r}: a positive int for a budget it has, not "
                                 "smoke (the tests run smoke at one thread)")  # fmt: skip

    def threads_for(self, budget: str) -> int:
        """The torch threads a run at `budget` uses when the caller names none."""
        return self.threads.get(budget, 1)

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
    """Experiments matching ids, prefixes or 'all' (see `match_ids`), in reading-list order within each pattern. An
    unknown id raises UserError with a hint."""
    registry = load_all()
    position = {i: n for n, i in enumerate(registry)}  # declaration order within a paper
    order = sorted(registry, key=lambda i: reading_key(i, position[i]))
    return [registry[i] for i in match_ids(order, patterns)]


def match_ids(known: Sequence[str], patterns: Sequence[str]) -> list[str]:
    """The ids of `known` (kept in its order) that `patterns` name, each once, pattern by pattern: 'all'; an id; a
    prefix ending in '/' ('circuits/'), or a paper without it ('circuits'); or the start of exactly one id
    ('gpt/char' for gpt/char-lm). A pattern that names nothing, or starts several ids without being a paper prefix,
    raises UserError (one line, with the nearest id or the candidates)."""
    chosen: dict[str, None] = {}
    for pat in patterns:
        if pat == "all":
            hits = list(known)
        elif pat in known:
            hits = [pat]
        else:
            hits = [i for i in known if i.startswith(pat if pat.endswith("/") else pat + "/")]
            if not hits and not pat.endswith("/"):
                starts = [i for i in known if i.startswith(pat)]
                if len(starts) > 1:
                    raise UserError(f"{pat!r} starts {len(starts)} experiment ids ({', '.join(starts[:6])}"
                                    f"{', ...' if len(starts) > 6 else ''}): give one of them")  # fmt: skip
                hits = starts
        if not hits:
            near = difflib.get_close_matches(pat, list(known), n=1, cutoff=0.4)
            hint = f"; did you mean {near[0]!r}?" if near else "; see 'mlreads list'"
            raise UserError(f"unknown experiment {pat!r}{hint}")
        chosen.update(dict.fromkeys(hits))
    return list(chosen)


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

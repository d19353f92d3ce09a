"""Rules declared on config fields: what values a field accepts (`positive`, `nonnegative`, `in_range`, `nonempty`,
`choices`, `filepath`, `unchecked`, or `spec(...)` with any of the rule keys).

A leaf of `mlreads.core`: every config dataclass declares its rules with these (models, data, experiments, training),
and `core.run.config.validate` checks them. Importing this module imports nothing else of mlreads.

The table of helpers with examples is in `core/run/config.py` ("value validation").
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from typing import Any

INT_MAX = 2**31 - 1  # sizes, counts and steps: beyond this a run overflows an index or never ends
SEED_MAX = 2**63 - 1
_RULE_KEYS = ("ge", "gt", "le", "lt", "nonempty", "choices", "check", "items", "what")


@dataclasses.dataclass(frozen=True)
class Rule:
    """A field's valid values: bounds, non-emptiness, a set of choices, a free check (`check(v) -> None | problem`),
    and the rule of each element of a tuple."""

    ge: float | None = None
    gt: float | None = None
    le: float | None = None
    lt: float | None = None
    nonempty: bool = False
    choices: tuple = ()  # the only valid values (of a string switch, say); () = any
    check: Callable[[Any], str | None] | None = None
    items: Rule | None = None  # the rule of each element of a tuple
    what: str = ""  # what the field is, said in the error ("0 means off", "a probability")

    def problem(self, value: Any) -> str | None:
        """None when `value` is valid, else what is wrong, in a few words."""
        if isinstance(value, (tuple, list)):
            if self.nonempty and not value:
                return "must not be empty"
            if self.items is not None:
                for i, item in enumerate(value):
                    if (p := self.items.problem(item)) is not None:
                        return f"item {i} ({item!r}) {p}"
            return self.check(value) if self.check else None
        if self.choices and value not in self.choices:
            return f"must be one of {', '.join(map(str, self.choices))}"
        if isinstance(value, str):
            if self.nonempty and not value.strip():
                return "must not be empty"
            if "\x00" in value:
                return "must not contain a NUL character"
            return self.check(value) if self.check else None
        if isinstance(value, bool) or value is None:
            return self.check(value) if self.check else None
        if isinstance(value, (int, float)):
            if isinstance(value, float) and not math.isfinite(value):
                return "must be a finite number"
            bounds = [(self.ge, ">=", value >= (self.ge or 0)), (self.gt, ">", value > (self.gt or 0)),
                      (self.le, "<=", value <= (self.le or 0)), (self.lt, "<", value < (self.lt or 0))]  # fmt: skip
            for bound, op, ok in bounds:
                if bound is not None and not ok:
                    return f"must be {self.range_text()}" + (f" ({self.what})" if self.what else "")
        return self.check(value) if self.check else None

    def range_text(self) -> str:
        lo = f">= {_num(self.ge)}" if self.ge is not None else f"> {_num(self.gt)}" if self.gt is not None else ""
        hi = f"<= {_num(self.le)}" if self.le is not None else f"< {_num(self.lt)}" if self.lt is not None else ""
        return " and ".join(x for x in (lo, hi) if x)


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() and abs(x) < 1e16 else f"{x:g}"


def spec(default: Any = dataclasses.MISSING, *, default_factory: Any = dataclasses.MISSING, **rule: Any):
    """A dataclass field with a declared rule: `spec(1, ge=1)`, `spec((0.9, 0.99), items=Rule(ge=0, lt=1))`."""
    unknown = set(rule) - set(_RULE_KEYS)
    if unknown:
        raise TypeError(f"spec(): unknown rule keys {sorted(unknown)}; known: {', '.join(_RULE_KEYS)}")
    return dataclasses.field(default=default, default_factory=default_factory, metadata={"rule": Rule(**rule)})


def _bounded(default: Any, bounds: dict, kw: dict):
    """`spec` with `bounds` on a number, or on each item of a tuple (then non-empty unless `nonempty=False`); an int
    (or a tuple of ints) is also at most INT_MAX. `kw` overrides the bounds (`le=SEED_MAX`)."""
    sample = default[0] if isinstance(default, tuple) and default else default
    if isinstance(sample, int) and not isinstance(sample, bool):
        bounds = {"le": INT_MAX, **bounds}
    if isinstance(default, tuple):
        nonempty = kw.pop("nonempty", True)
        what = kw.pop("what", "")
        return spec(default, nonempty=nonempty, items=Rule(**{**bounds, **kw}, what=what))
    return spec(default, **{**bounds, **kw})


def positive(default: Any, **kw: Any):
    """> 0 for floats, 1..INT_MAX for ints; on a tuple, for each item."""
    sample = default[0] if isinstance(default, tuple) and default else default
    return _bounded(default, {"ge": 1} if isinstance(sample, int) else {"gt": 0}, kw)


def nonnegative(default: Any, **kw: Any):
    """>= 0 (ints: at most INT_MAX); on a tuple, for each item."""
    return _bounded(default, {"ge": 0}, kw)


def in_range(default: Any, lo: float, hi: float, *, lo_open: bool = False, hi_open: bool = True, **kw: Any):
    """lo <= v < hi by default (`lo_open`, `hi_open` choose the ends); on a tuple, for each item."""
    return _bounded(default, {"gt" if lo_open else "ge": lo, "lt" if hi_open else "le": hi}, kw)


def nonempty(default: Any, **kw: Any):
    """A string that is not blank, or a tuple with at least one item (`items=Rule(...)` for its items)."""
    return spec(default, nonempty=True, **kw)


def choices(default: Any, options: tuple, **kw: Any):
    """A string switch that is one of `options`; on a tuple of strings, each item is one of them (and the tuple is
    non-empty unless `nonempty=False`). Any other value is refused, never read as "the other option"."""
    options = tuple(options)
    if isinstance(default, tuple):
        return spec(default, nonempty=kw.pop("nonempty", True), items=Rule(choices=options), **kw)
    return spec(default, choices=options, **kw)


def filepath(default: Any = None, **kw: Any):
    """A file or folder path: not blank and without NUL (None, where the type allows it: the built-in source)."""
    return spec(default, nonempty=True, what="a path", **kw)


def unchecked(default: Any):
    """Declared on purpose without a rule: any finite value of its type (or string without NUL) is valid."""
    return spec(default)


def declared_rule(f: dataclasses.Field) -> Rule | None:
    """The rule a field declares (`spec` and its shorthands, or `field(metadata={"ge": 1, ...})`), else None."""
    meta = f.metadata or {}
    if "rule" in meta:
        return meta["rule"]
    declared = {k: meta[k] for k in _RULE_KEYS if k in meta}
    return Rule(**declared) if declared else None

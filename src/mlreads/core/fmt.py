"""Numbers and checks as people read them: 4 significant digits, no float noise, both sides of every relation."""

from __future__ import annotations

import math
from typing import Any


def num(x: Any) -> str:
    """A number with sensible precision: ints as they are, floats to 4 significant digits (`1.867`, `0.0562`,
    `516.2`, `1.2e-08`), thousands separated from 10^4 on."""
    if isinstance(x, bool) or x is None:
        return str(x)
    if isinstance(x, int):
        return f"{x:,}" if abs(x) >= 10_000 else str(x)
    if isinstance(x, float):
        if not math.isfinite(x):
            return str(x)
        if x == 0:
            return "0"
        a = abs(x)
        if a >= 10_000 and a < 1e12:
            return f"{x:,.0f}"
        if 1e-3 <= a < 10_000:
            digits = max(0, 3 - int(math.floor(math.log10(a))))
            text = f"{x:.{digits}f}"
            return text.rstrip("0").rstrip(".") if "." in text else text
        return f"{x:.3g}"
    return str(x)


def plural(n: int, noun: str, many: str | None = None) -> str:
    """`1 thread`, `2 threads`, `0 claims`: the count and the noun, singular only for exactly one."""
    return f"{n} {noun if n == 1 else (many or noun + 's')}"


def value(x: Any, max_items: int | None = 8) -> str:
    """Any JSON value, numbers via `num`; lists and objects past `max_items` items shortened (None: in full)."""
    if isinstance(x, float | int) and not isinstance(x, bool):
        return num(x)
    cut = max_items is not None
    if isinstance(x, list):
        items = [value(v, max_items) for v in (x[:max_items] if cut else x)]
        return "[" + ", ".join(items) + (f", … ({len(x)} items)]" if cut and len(x) > max_items else "]")
    if isinstance(x, dict):
        items = [f"{k}: {value(v, max_items)}" for k, v in (list(x.items())[:max_items] if cut else x.items())]
        return "{" + ", ".join(items) + (", …}" if cut and len(x) > max_items else "}")
    return str(x)


def with_interval(x: Any, interval: Any, max_items: int | None = 8) -> str:
    """`93.8 [86, 97.3]`: a value with its interval (two standard errors each side), or the value alone (lists and
    objects shortened past `max_items` items; None: in full)."""
    if isinstance(interval, list | tuple) and len(interval) == 2:
        return f"{value(x, max_items)} [{value(interval[0])}, {value(interval[1])}]"
    return value(x, max_items)


def evidence(check: dict) -> str:
    """A check with both sides and their values: `acc_hippo 91.6 >= acc_random 56.1 + 10`, the measured side with its
    interval when the check declared its noise (`acc 98.6 [97.9, 99.3] >= 99`). A check without a recorded relation
    (a `holds` check, or a result written before relations were recorded) shows its expectation and the measured
    value."""
    rel = check.get("relation")
    if isinstance(rel, dict) and rel.get("op"):
        lhs = f"{rel.get('lhs')} {with_interval(rel.get('lhs_value'), check.get('interval'))}"
        rhs = value(rel.get("rhs_value"))
        if rel.get("rhs"):
            rhs = f"{rel['rhs']} {rhs}"
        margin = rel.get("margin") or 0
        if isinstance(margin, int | float) and margin:
            rhs += f" {'+' if margin > 0 else '-'} {num(abs(margin))}"
        return f"{lhs} {rel['op']} {rhs}"
    measured = check.get("measured")
    expected = check.get("expected") or check.get("name", "")
    return f"{expected} (measured: {value(measured)})"


def duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f} s"
    if seconds < 3600:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


def flat(config: dict, prefix: str = "") -> dict[str, str]:
    """A nested config as the dotted keys `--set` takes: {"train": {"steps": 200}} -> {"train.steps": "200"}."""
    out: dict[str, str] = {}
    for k, v in config.items():
        if isinstance(v, dict):
            out.update(flat(v, f"{prefix}{k}."))
        elif isinstance(v, list):
            out[f"{prefix}{k}"] = ",".join(str(x) for x in v)
        else:
            out[f"{prefix}{k}"] = "none" if v is None else str(v).lower() if isinstance(v, bool) else str(v)
    return out

"""The noise of a measurement, for checks that must beat it (core/run/verdict.py, "the power rule").

An experiment returns a value with its standard error and interval under the conventional names `<name>`,
`<name>_se` and `<name>_ci` (the report shows `<name>_ci`, or `<name> ± 2 se`, next to the value), and its check
names the noise:

    metrics |= proportion("acc", correct, scale=100)      # acc, acc_se, acc_ci (Wilson) over the evaluation set
    at_least("acc", 99, ci="acc_ci")                       # passes only when the whole interval is >= 99
    metrics |= mean_se("gain", per_seed_or_per_batch)     # gain, gain_se, gain_ci
    metrics |= paired("diff", arm_a, arm_b)               # the same examples (or seeds) under two arms
    at_least("diff", 0, se="diff_se")

Every interval here is two standard errors wide on each side (`Z`), so "passes by 2 s.e." and "the interval
clears the bound" are the same rule. Sources: Wilson 1927 for the binomial interval (it stays inside [0, 1] and
behaves at 0 or n successes, where value ± 2 se does not); Efron 1979 for the percentile bootstrap.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np

Z = 2.0  # a check passes or fails only by at least Z standard errors (core/run/verdict.py)


def wilson(k: int, n: int, z: float = Z) -> tuple[float, float]:
    """Wilson score interval of a proportion k/n, as fractions in [0, 1]."""
    if n <= 0 or not 0 <= k <= n:
        raise ValueError(f"wilson: need 0 <= k <= n and n > 0, got k={k}, n={n}")
    p = k / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def proportion(name: str, correct: Sequence[bool] | np.ndarray, scale: float = 1.0) -> dict:
    """`{name: k/n, name_se: sqrt(p(1-p)/n), name_ci: Wilson interval}`, all times `scale` (100 for percent)."""
    flags = np.asarray(correct, dtype=bool).ravel()
    n, k = flags.size, int(flags.sum())
    lo, hi = wilson(k, n)
    p = k / n
    return {name: scale * p, f"{name}_se": scale * math.sqrt(p * (1 - p) / n), f"{name}_ci": [scale * lo, scale * hi],
            f"{name}_n": n}  # fmt: skip


def mean_se(name: str, values: Sequence[float] | np.ndarray) -> dict:
    """`{name: mean, name_se: sd / sqrt(n), name_ci: mean ± 2 se}` of independent values (seeds, batches)."""
    x = np.asarray(values, dtype=float).ravel()
    if x.size < 2:
        raise ValueError(f"mean_se({name!r}): a standard error needs at least 2 values, got {x.size}")
    mean, se = float(x.mean()), float(x.std(ddof=1) / math.sqrt(x.size))
    return {name: mean, f"{name}_se": se, f"{name}_ci": [mean - Z * se, mean + Z * se], f"{name}_n": int(x.size)}


def paired(name: str, a: Sequence[float] | np.ndarray, b: Sequence[float] | np.ndarray) -> dict:
    """The mean paired difference a - b (the same examples, or the same seeds' init and data order, under two arms)
    with its standard error: pairing removes the noise the two arms share."""
    a, b = np.asarray(a, dtype=float).ravel(), np.asarray(b, dtype=float).ravel()
    if a.shape != b.shape:
        raise ValueError(f"paired({name!r}): the arms have {a.size} and {b.size} values; pairs need the same count")
    return mean_se(name, a - b)


def bootstrap(name: str, data: Sequence | np.ndarray, statistic: Callable[[np.ndarray], float], n_boot: int = 1000,
              seed: int = 0) -> dict:  # fmt: skip
    """`statistic(data)` with a bootstrap standard error and percentile interval over resamples of `data`'s first axis
    (examples of the evaluation set). The interval covers the same mass as ± 2 se of a normal (95.4%)."""
    x = np.asarray(data)
    if len(x) < 2:
        raise ValueError(f"bootstrap({name!r}): needs at least 2 examples, got {len(x)}")
    rng = np.random.default_rng(seed)
    stats = np.array([statistic(x[rng.integers(0, len(x), len(x))]) for _ in range(n_boot)], dtype=float)
    tail = 100 * (1 - math.erf(Z / math.sqrt(2))) / 2  # 2.28% each side for Z = 2
    lo, hi = np.percentile(stats, [tail, 100 - tail])
    return {name: float(statistic(x)), f"{name}_se": float(stats.std(ddof=1)), f"{name}_ci": [float(lo), float(hi)],
            f"{name}_n": int(len(x))}  # fmt: skip


def interval_of(metrics: dict, name: str) -> list[float] | None:
    """The interval the report shows next to `metrics[name]`: `name_ci`, else `name ± Z name_se`; None without."""
    ci = metrics.get(f"{name}_ci")
    if isinstance(ci, list | tuple) and len(ci) == 2 and all(_num(v) for v in ci):
        return [float(ci[0]), float(ci[1])]
    value, se = metrics.get(name), metrics.get(f"{name}_se")
    if _num(value) and _num(se):
        return [value - Z * se, value + Z * se]
    return None


def _num(x) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool) and math.isfinite(x)

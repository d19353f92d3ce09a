"""Peak resident memory of a piece of work, for checks that memory stays flat as a length grows (Linux).

The kernel keeps a per-process high-water mark (VmHWM in /proc/self/status); writing "5" to /proc/self/clear_refs
resets it to the current RSS. So the peak growth during `fn()` is VmHWM after it minus VmRSS before it. Elsewhere
(no /proc) the functions return None rather than a number that would mean something else.
"""

from __future__ import annotations

from typing import Any, Callable


def _status_kb(key: str) -> int:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith(key + ":"))


def peak_rss_growth_mb(fn: Callable[[], Any]) -> tuple[Any, float | None]:
    """Run fn() and return (its result, the growth of the process's peak RSS during it in MB, or None)."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        base = _status_kb("VmRSS")
    except OSError:
        return fn(), None
    out = fn()
    return out, (_status_kb("VmHWM") - base) / 1024

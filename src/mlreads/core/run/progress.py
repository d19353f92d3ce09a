"""Progress: a tqdm bar on a terminal; one plain line every N seconds when stderr is a log file or a notebook pipe.

- `MLREADS_PROGRESS=1` forces the bar, `MLREADS_PROGRESS=0` turns all progress output off.
- `MLREADS_PROGRESS_EVERY=S` sets the interval of the plain lines (default 30 s).
- The bar's description (`train loss 1.2345`) comes first and the bar itself shrinks, so at 80 columns the loss
  stays readable.
"""

from __future__ import annotations

import os
import sys
import time


def progress_enabled() -> bool:
    """A bar (True) only on a terminal or when forced."""
    flag = os.environ.get("MLREADS_PROGRESS")
    if flag is not None:
        return flag not in ("0", "", "false")
    return sys.stderr.isatty()


def lines_enabled() -> bool:
    """Plain progress lines: when there is no terminal bar and progress is not switched off."""
    flag = os.environ.get("MLREADS_PROGRESS")
    return flag is None and not sys.stderr.isatty()


def _interval() -> float:
    try:
        return max(0.0, float(os.environ.get("MLREADS_PROGRESS_EVERY", "30")))
    except ValueError:
        return 30.0


def _clock(seconds: float) -> str:
    seconds = int(seconds)
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}" if seconds >= 3600 else f"{seconds // 60:02d}:{seconds % 60:02d}"


class LineProgress:
    """The subset of tqdm's API that mlreads uses, printing one line every `every` seconds (and one at the end)."""

    def __init__(self, iterable=None, total: int | None = None, desc: str = "", initial: int = 0,
                 every: float | None = None, stream=None, **_tqdm_options):  # fmt: skip
        self.iterable = iterable
        self.total = total if total is not None else (len(iterable) if hasattr(iterable, "__len__") else None)
        self.n = self.start_n = initial
        self.desc = desc
        self.postfix = ""
        self.every = _interval() if every is None else every
        self.stream = stream
        self.t0 = self.last = time.monotonic()
        self.closed = False

    def __iter__(self):
        for item in self.iterable:
            yield item
            self.update(1)
        self.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def line(self) -> str:
        elapsed = time.monotonic() - self.t0
        done = self.n - self.start_n
        parts = [self.desc or "progress"]
        if self.total:
            parts.append(f"{self.n}/{self.total} ({100 * self.n / self.total:.0f}%)")
        else:
            parts.append(str(self.n))
        parts.append(f"elapsed {_clock(elapsed)}")
        if self.total and done > 0:
            parts.append(f"eta {_clock(elapsed / done * (self.total - self.n))}")
        if self.postfix:
            parts.append(self.postfix)
        return " | ".join(parts)

    def _emit(self) -> None:
        print(self.line(), file=self.stream or sys.stderr, flush=True)
        self.last = time.monotonic()

    def update(self, n: int = 1) -> None:
        self.n += n
        if time.monotonic() - self.last >= self.every:
            self._emit()

    def set_description(self, desc: str, refresh: bool = True) -> None:
        self.desc = desc

    def set_postfix(self, ordered_dict=None, refresh: bool = True, **kwargs) -> None:
        items = {**(ordered_dict or {}), **kwargs}
        self.postfix = ", ".join(f"{k}={v}" for k, v in items.items())

    def refresh(self) -> None:
        pass

    def close(self) -> None:
        if not self.closed and self.n > self.start_n and time.monotonic() - self.t0 >= self.every:
            self._emit()  # a final line for anything that ran longer than one interval
        self.closed = True


BAR_FORMAT = "{desc} {percentage:3.0f}%|{bar}| {n_fmt}/{total_fmt} [{elapsed}<{remaining}]{postfix}"


def bar(iterable=None, total: int | None = None, desc: str = "", initial: int = 0, enabled: bool = True, **kwargs):
    """A progress bar that does not linger after it closes: tqdm on a terminal, `LineProgress` otherwise."""
    if enabled and not progress_enabled() and lines_enabled():
        return LineProgress(iterable, total=total, desc=desc, initial=initial, **kwargs)
    from tqdm.auto import tqdm

    return tqdm(iterable, total=total, desc=desc, initial=initial, leave=False, dynamic_ncols=True,
                bar_format=BAR_FORMAT if total or hasattr(iterable, "__len__") else None,
                disable=not (enabled and progress_enabled()), **kwargs)  # fmt: skip

"""Progress bars: on a terminal, or when MLREADS_PROGRESS=1; off in CI logs and under pytest."""

from __future__ import annotations

import os
import sys


def progress_enabled() -> bool:
    flag = os.environ.get("MLREADS_PROGRESS")
    if flag is not None:
        return flag not in ("0", "", "false")
    return sys.stderr.isatty()


def bar(iterable=None, total: int | None = None, desc: str = "", initial: int = 0, enabled: bool = True, **kwargs):
    """A tqdm bar that does not linger after it closes."""
    from tqdm.auto import tqdm

    return tqdm(iterable, total=total, desc=desc, initial=initial, leave=False, dynamic_ncols=True,
                disable=not (enabled and progress_enabled()), **kwargs)  # fmt: skip

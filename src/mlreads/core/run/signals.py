"""SIGINT and SIGTERM stop a run cleanly: at the next step boundary of `fit` (which writes a final checkpoint where
the run checkpoints), or at once when no training loop is running.

`handle_signals()` (the CLI wraps `mlreads run` in it) installs the handlers and restores the previous ones after.
The first signal inside `fit` only sets a flag that `fit` reads after each optimiser step (`requested()`); a second
signal, or one outside any training loop, raises `Interrupted` where the program is. The CLI turns `Interrupted` into
a line saying how to resume and exit code 128 + the signal (130 for SIGINT, 143 for SIGTERM).

Under torchrun (a training loop over several ranks) a repeated signal also waits for the step boundary: the same
stop reaches a rank twice there (torchrun forwards the signal it got; a scheduler signals every process), and a rank
that left mid-step would leave the others blocked in a collective. torchrun's own SIGKILL, 30 s later, is the hard
stop.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from mlreads.core.errors import Interrupted

_requested: int | None = None
_loops = 0  # training loops running (fit calls nest only in tests, but count anyway)
_patient = 0  # of which over several ranks: a repeated signal waits for the step boundary too
_installed = False
NAMES = {signal.SIGINT: "SIGINT", signal.SIGTERM: "SIGTERM"}


def requested() -> int | None:
    """The signal that asked the run to stop, or None."""
    return _requested


def _handler(signum, frame) -> None:
    global _requested
    if _loops and _patient and _requested is not None:
        return
    if _requested is not None or _loops == 0:
        raise Interrupted(signum)
    _requested = signum


@contextmanager
def handle_signals() -> Iterator[None]:
    """Install the SIGINT/SIGTERM handlers for the duration of the block (main thread only; else a no-op)."""
    global _requested, _installed
    if threading.current_thread() is not threading.main_thread() or _installed:
        yield
        return
    previous = {s: signal.getsignal(s) for s in NAMES}
    _requested = None
    _installed = True
    try:
        for s in NAMES:
            signal.signal(s, _handler)
        yield
    finally:
        for s, h in previous.items():
            signal.signal(s, h)
        _installed = False
        _requested = None


@contextmanager
def training_loop(ranks: int = 1) -> Iterator[None]:
    """Mark a training loop as running: a first signal now waits for the step boundary (and, over several `ranks`,
    a repeated one too)."""
    global _loops, _patient
    patient = ranks > 1
    _loops += 1
    _patient += patient
    try:
        yield
    finally:
        _loops -= 1
        _patient -= patient


def clear() -> None:
    global _requested
    _requested = None


def steps(iterable, ranks: int = 1):
    """Iterate `iterable` (a training loop's steps) inside `training_loop(ranks)`; the loop counts as running until
    the iteration ends, breaks or raises (the generator is closed then)."""
    with training_loop(ranks):
        yield from iterable

"""Errors the CLI turns into one clear line and exit code 2 (bad input) instead of a traceback.

Every `UserError` is bad input (a config value, a data file, a checkpoint, a run folder in use, a full disk, a run
that ran out of memory or failed under `--set` values): the CLI prints `mlreads: error: <message>` and exits 2.
`Interrupted` (SIGINT/SIGTERM) is turned by the runner into `RunStopped`, which exits 130/143 after saying how to
resume; `NonFiniteLoss` is a failed run (exit 1).

Errors cross from the runner to the CLI by type, never by their message text. The one exception torch gives no type of
its own, a failed CPU allocation, is recognised here and only here (`cpu_allocation_failed`).
"""

from pathlib import Path


class UserError(Exception):
    """Bad input from the user: the message names the fix. The CLI prints it and exits 2."""


class ConfigError(UserError, ValueError):
    """An unknown, ill-typed or out-of-range config value (`--set key=value`, or a cross-field rule)."""


class DataMissing(UserError):
    """A dataset is not installed. The message carries the exact install command."""


class DataError(UserError, ValueError):
    """A data file is unusable (corrupt, truncated, wrong shapes or values, not text). The message names the file."""


class CheckpointError(UserError):
    """A checkpoint cannot be used: a bad `latest` pointer, a damaged file, or one that does not match the run."""


class RunLocked(UserError):
    """Another process holds the run folder's lock, or the folder holds a run that would be overwritten."""


class WriteFailed(UserError):
    """A write failed (disk full, read-only, quota); the message says what was kept."""


class OutOfMemory(UserError):
    """A run ran out of memory: a `MemoryError`, a `torch.OutOfMemoryError` (CUDA), or a failed CPU allocation
    (`cpu_allocation_failed`). Raised by the runner where it catches them; the message says what to shrink."""


class RunFailed(UserError):
    """A run given `--set` values raised an unexpected exception: most likely those values (a size the model rejects,
    a combination no budget uses), so bad input, one line. `folder` is the run folder; `traceback` the file the
    traceback was saved to (None when it could not be written). Without `--set` values the runner raises the original
    exception instead: a bug, whose traceback must be seen."""

    def __init__(self, message: str, folder: Path, traceback: Path | None = None):
        super().__init__(message)
        self.folder = folder
        self.traceback = traceback


class RunStopped(Exception):
    """A signal stopped `mlreads run`: the message names the signal, the step, where the checkpoint is and the command
    that resumes (or says there is nothing to resume); `exit_code` is 128 + the signal (130 SIGINT, 143 SIGTERM)."""

    def __init__(self, message: str, exit_code: int):
        super().__init__(message)
        self.exit_code = exit_code


# torch turns a failed CPU allocation into a plain RuntimeError (c10::Error from c10/core/impl/alloc_cpu.cpp:
# "DefaultCPUAllocator: can't allocate memory: you tried to allocate N bytes. Error code 12 (Cannot allocate memory)"),
# with no subclass to catch: its message is the only evidence, so it is read here, in one place.
CPU_ALLOCATION_FAILED = "can't allocate memory"


def cpu_allocation_failed(err: BaseException) -> bool:
    """True for torch's failed CPU allocation: exactly a RuntimeError (not a subclass, which is some other error with
    a type of its own) whose message holds the CPU allocator's phrase."""
    return type(err) is RuntimeError and CPU_ALLOCATION_FAILED in str(err)


class NonFiniteLoss(RuntimeError):
    """Training produced a NaN or Inf loss. The last good checkpoint is kept."""


class Interrupted(KeyboardInterrupt):
    """SIGINT or SIGTERM stopped the run at a step boundary. `signum` is the signal; `checkpoint` the folder written
    (or None when the run does not checkpoint); `step` the optimiser steps done."""

    def __init__(self, signum: int, step: int | None = None, checkpoint=None):
        super().__init__(signum)
        self.signum = signum
        self.step = step
        self.checkpoint = checkpoint

    @property
    def exit_code(self) -> int:
        return 128 + self.signum

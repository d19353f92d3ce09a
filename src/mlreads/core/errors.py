"""Errors the CLI turns into one clear line and exit code 2 (bad input) instead of a traceback.

Every `UserError` is bad input (a config value, a data file, a checkpoint, a run folder in use, a full disk): the CLI
prints `mlreads: error: <message>` and exits 2. `Interrupted` (SIGINT/SIGTERM) exits 130/143 after saying how to
resume; `NonFiniteLoss` is a failed run (exit 1).
"""


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

"""Errors the CLI turns into one clear line and exit code 2 (bad input) instead of a traceback."""


class UserError(Exception):
    """Bad input from the user: the message names the fix. The CLI prints it and exits 2."""


class ConfigError(UserError):
    """An unknown or ill-typed `--set key=value` override."""


class DataMissing(UserError):
    """A dataset is not installed. The message carries the exact install command."""


class NonFiniteLoss(RuntimeError):
    """Training produced a NaN or Inf loss. The last good checkpoint is kept."""

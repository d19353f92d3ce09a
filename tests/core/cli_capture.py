"""Run the CLI in-process and check its one-line refusals: shared by the hardening tests."""

from __future__ import annotations

import contextlib
import io

from mlreads import cli


def run_cli(argv) -> tuple[int, str, str]:
    """`mlreads argv` in this process: (exit code, stdout, stderr)."""
    err, out = io.StringIO(), io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
        code = cli.main(argv)
    return code, out.getvalue(), err.getvalue()


def assert_one_line_exit_2(code: int, err: str, ignore_warnings: bool = False) -> None:
    """Exit 2 with exactly one line on stderr and no traceback (`mlreads: warning:` lines left out when asked)."""
    assert code == 2, err
    lines = err.strip().splitlines()
    if ignore_warnings:
        lines = [x for x in lines if not x.startswith("mlreads: warning:")]
    assert len(lines) == 1 and "Traceback" not in err, err

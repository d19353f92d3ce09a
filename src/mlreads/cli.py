"""The command line: `mlreads list | run | report`.

Exit codes: 0 every check passed, 1 a claim check failed (or a run stopped on a non-finite loss), 2 bad input
(unknown id, bad override, missing data, unwritable folder), always as one line naming the fix.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from mlreads.core.errors import NonFiniteLoss, UserError
from mlreads.core.registry import BUDGETS


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line, exit 2, no usage dump
        self.exit(2, f"mlreads: error: {message} (see 'mlreads {self.prog.split()[-1]} --help')\n")


MAX_THREADS = 1024
SEED_MAX = 2**63 - 1


def _bounded_int(lo: int, hi: int, what: str):
    def parse(text: str) -> int:
        try:
            value = int(text.strip())
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {what}, got {text[:40]!r}") from None
        if not lo <= value <= hi:
            raise argparse.ArgumentTypeError(f"expected {what} from {lo} to {hi}, got {text[:40]!r}")
        return value

    return parse


_seed = _bounded_int(0, SEED_MAX, "a seed (an integer)")
_threads = _bounded_int(1, MAX_THREADS, "a positive integer")


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="mlreads", description="Run the ideas of modern ML: experiments, verdicts and a report.")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)

    sub.add_parser("list", help="one row per experiment: id, paper, claim and budgets")

    r = sub.add_parser("run", help="run experiments and print their verdicts")
    r.add_argument("ids", nargs="+", metavar="ID", help="experiment ids, prefixes such as 'gpt/', or 'all'")
    r.add_argument("--budget", choices=BUDGETS, default="smoke")
    r.add_argument("--seed", type=_seed, default=0, help="0 to 2^63-1 (default 0)")
    r.add_argument("--out", type=Path, default=Path("runs"), help="output folder (default: runs)")
    r.add_argument("--threads", type=_threads, default=None, help=f"torch threads, 1 to {MAX_THREADS} (default: all cores)")
    r.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config field, e.g. --set train.steps=100 (repeatable)")  # fmt: skip
    r.add_argument("--resume", action="store_true", help="continue from the run folder's last checkpoint")
    r.add_argument("--overwrite", action="store_true", help="replace a run folder that holds checkpoints")
    r.add_argument("--allow-safe-changes", action="store_true",
                   help="with --resume: accept more steps and other eval/log/checkpoint cadences than the checkpoint's")

    rep = sub.add_parser("report", help="write the static HTML report")
    rep.add_argument("--runs", type=Path, default=Path("runs"))
    rep.add_argument("--out", type=Path, default=Path("reports"))
    return p


def cmd_list() -> int:
    from mlreads.core.registry import load_all

    exps = sorted(load_all().values(), key=lambda e: e.id)
    width = max((len(e.id) for e in exps), default=10)
    print(f"{'id':<{width}}  {'budgets':<17}  paper: claim")
    for e in exps:
        print(f"{e.id:<{width}}  {','.join(e.budgets):<17}  {e.paper}: {e.claim}")
    return 0


def cmd_run(args) -> int:
    from mlreads.core import data, runfolder, signals
    from mlreads.core.config import parse_overrides
    from mlreads.core.registry import select
    from mlreads.core.runner import check_writable, resolve_config, run_dir
    from mlreads.core.train import distributed_env

    exps = select(args.ids)
    overrides = parse_overrides(args.overrides)
    # Check every value before running anything, so a typo fails in a second, not after an hour.
    cfgs = {}
    for e in exps:
        try:
            cfgs[e.id] = resolve_config(e, args.budget, overrides)
        except UserError as err:
            raise UserError(f"{e.id}: {err}" if len(exps) > 1 else str(err)) from None
    for e in exps:
        for name in e.requires:
            data.require(name, cfgs[e.id])
    distributed_env()
    check_writable(args.out)
    for e in exps:
        runfolder.preflight(run_dir(args.out, e, args.budget, args.seed), args.resume, args.overwrite)

    status = 0
    with signals.handle_signals():
        for e in exps:
            if sys.stderr.isatty():  # a header for people; piped stderr stays one line per error
                print(f"-> {e.id} [{args.budget}]", file=sys.stderr, flush=True)
            status = max(status, _run_one(e, args, cfgs[e.id], bool(overrides)))
    return status


def _run_one(e, args, cfg, overridden: bool) -> int:
    """Run one experiment; a stop on a signal says how to resume, a crash caused by --set values is one line."""
    from mlreads.core.errors import Interrupted
    from mlreads.core.runner import run_dir, run_experiment, verdict_line

    try:
        result = run_experiment(e, args.budget, args.seed, args.out, threads=args.threads, resume=args.resume, cfg=cfg,
                                overwrite=args.overwrite, allow_safe_changes=args.allow_safe_changes)  # fmt: skip
    except NonFiniteLoss as err:
        print(f"STOPPED {e.id}: {err}", flush=True)
        return 1
    except Interrupted as sig:
        raise _Stopped(_stop_line(e, args, sig), sig.exit_code) from None
    except (UserError, KeyboardInterrupt):
        raise
    except Exception as err:
        if isinstance(err, MemoryError) or "allocate" in str(err) and isinstance(err, RuntimeError):
            raise UserError(f"{e.id} ran out of memory: reduce the sizes you set with --set (or the batch size)") from None
        if not overridden:
            raise  # a bug, not bad input: keep the traceback
        where = _save_traceback(run_dir(args.out, e, args.budget, args.seed))
        msg = " ".join(str(err).split())[:160] or type(err).__name__
        raise UserError(f"{e.id} failed with these --set values ({type(err).__name__}: {msg}); check them"
                        f"{f' (traceback in {where})' if where else ''}") from None  # fmt: skip
    print(verdict_line(result), flush=True)
    return 0 if result["verdict"] == "pass" else 1


class _Stopped(Exception):
    def __init__(self, line: str, code: int):
        super().__init__(line)
        self.code = code


def _save_traceback(folder: Path) -> Path | None:
    import traceback

    try:
        if folder.is_dir() and not folder.is_symlink():
            path = folder / "error.txt"
            if not path.is_symlink():
                path.write_text(traceback.format_exc())
                return path
    except OSError:
        pass
    return None


def _stop_line(e, args, sig) -> str:
    """One line: which signal stopped what, where the checkpoint is, and the command that resumes."""
    import shlex

    from mlreads.core import runfolder, signals
    from mlreads.core.runner import run_dir

    name = signals.NAMES.get(sig.signum, f"signal {sig.signum}")
    at = f" at step {sig.step}" if sig.step is not None else ""
    folder = run_dir(args.out, e, args.budget, args.seed)
    if sig.checkpoint is not None or runfolder.has_checkpoints(folder):
        cmd = ["mlreads", "run", e.id, "--budget", args.budget, "--seed", str(args.seed), "--out", str(args.out)]
        for item in args.overrides:
            cmd += ["--set", item]
        if args.threads:
            cmd += ["--threads", str(args.threads)]
        saved = f"checkpoint saved in {sig.checkpoint}" if sig.checkpoint is not None else f"checkpoints in {folder}"
        return f"stopped by {name}{at} ({e.id}); {saved}; resume with: {shlex.join(cmd + ['--resume'])}"
    return (f"stopped by {name}{at} ({e.id}); this run does not checkpoint, so there is nothing to resume: rerun it "
            f"(or set train.ckpt_every to make it resumable)")  # fmt: skip


def cmd_report(args) -> int:
    from mlreads.core.report import write_report

    if not args.runs.is_dir():
        raise UserError(f"no runs folder {str(args.runs)!r}; run experiments first, e.g. 'mlreads run all'")
    index = write_report(args.runs, args.out)
    print(f"wrote {index}")
    return 0


def main(argv: list[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as e:  # argparse already printed its one line (or --help)
        return int(e.code or 0)
    try:
        if args.command == "list":
            return cmd_list()
        if args.command == "run":
            return cmd_run(args)
        return cmd_report(args)
    except UserError as err:
        print(f"mlreads: error: {_one_line(err)}", file=sys.stderr)
        return 2
    except _Stopped as stop:
        print(f"mlreads: {stop}", file=sys.stderr)
        return stop.code
    except KeyboardInterrupt as err:
        print("mlreads: interrupted", file=sys.stderr)
        return getattr(err, "exit_code", 130)
    except OSError as err:  # a write that failed outside the guarded ones (disk full, read-only, permissions)
        where = f": {err.filename}" if err.filename else ""
        print(f"mlreads: error: {err.strerror or err}{where}", file=sys.stderr)
        return 2


def _one_line(err: Exception) -> str:
    return " ".join(str(err).split()) or type(err).__name__


if __name__ == "__main__":
    sys.exit(main())

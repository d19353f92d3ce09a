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


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def _int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="mlreads", description="Run the ideas of modern ML: experiments, verdicts and a report.")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)

    sub.add_parser("list", help="one row per experiment: id, paper, claim and budgets")

    r = sub.add_parser("run", help="run experiments and print their verdicts")
    r.add_argument("ids", nargs="+", metavar="ID", help="experiment ids, prefixes such as 'gpt/', or 'all'")
    r.add_argument("--budget", choices=BUDGETS, default="smoke")
    r.add_argument("--seed", type=_int, default=0)
    r.add_argument("--out", type=Path, default=Path("runs"), help="output folder (default: runs)")
    r.add_argument("--threads", type=_positive_int, default=None, help="torch threads (default: all cores)")
    r.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config field, e.g. --set train.steps=100 (repeatable)")  # fmt: skip
    r.add_argument("--resume", action="store_true", help="continue from the run folder's last checkpoint")

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
    from mlreads.core.config import parse_overrides
    from mlreads.core.registry import select
    from mlreads.core.runner import check_writable, resolve_config, run_experiment, verdict_line

    exps = select(args.ids)
    overrides = parse_overrides(args.overrides)
    # Check every config before running anything, so a typo fails in a second, not after an hour.
    cfgs = {e.id: resolve_config(e, args.budget, overrides) for e in exps}
    from mlreads.core import data

    for e in exps:
        for name in e.requires:
            data.require(name, cfgs[e.id])
    check_writable(args.out)

    status = 0
    for e in exps:
        print(f"-> {e.id} [{args.budget}]", file=sys.stderr, flush=True)
        try:
            result = run_experiment(e, args.budget, args.seed, args.out, threads=args.threads, resume=args.resume,
                                    cfg=cfgs[e.id])  # fmt: skip
        except NonFiniteLoss as err:
            print(f"STOPPED {e.id}: {err}", flush=True)
            status = max(status, 1)
            continue
        print(verdict_line(result), flush=True)
        if result["verdict"] != "pass":
            status = max(status, 1)
    return status


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
        print(f"mlreads: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("mlreads: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())

"""The command line: `mlreads list | show | run | inspect | report | publish | supersede | readme-table | docs`.

Verdicts (core/run/verdict.py): a run is `pass`, `fail` (a check failed by more than its noise) or `inconclusive` (a
precondition failed, or a check lies within two standard errors of its bound); the verdict line says which.

Exit codes: 0 every run passed; 1 a run failed or was inconclusive (or stopped on a non-finite loss); 2 bad input
(unknown id, bad override, missing data, unwritable folder, out of memory, a crash under --set values), always as one
line naming the fix; 130/143 a run stopped by SIGINT/SIGTERM, with the command that resumes it; 141 the reader of
the output went away (`mlreads list | head -1`), quietly, as a Unix tool killed by SIGPIPE. Inconclusive shares
1 with fail on purpose: 0 means "every claim check passed", a script that needs the difference reads the verdict
line or result.json, and the exit status of several runs stays the worst of them.

The CLI parses and prints, nothing more: `mlreads run` turns argv into a RunRequest (core/run/request.py), which the
runner plans (every check, before anything runs) and executes (core/run/runner.py); the runner's errors reach the CLI
as types (core/errors.py: UserError and its kinds, RunStopped), never recognised by their message text.

`mlreads list` reads a cached catalogue (core/run/catalog.py) and imports neither torch nor matplotlib: keep heavy imports
inside the command functions.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from mlreads.cli_parser import COMMANDS, RUN_EXAMPLES, build_parser  # noqa: F401  (RUN_EXAMPLES: the docs' test)
from mlreads.core.errors import RunStopped, UserError
from mlreads.core.report.show import BUDGET_LIMITS, estimate, ledger_times
from mlreads.core.run.registry import BUDGETS
from mlreads.core.run.torchrun import other_rank

# ---------------------------------------------------------------------------------------------- list / show


def cmd_list(args) -> int:
    from mlreads.core.papers import reading_key
    from mlreads.core.run.catalog import catalog

    exps = sorted(catalog(), key=lambda e: reading_key(e["id"], e["position"]))
    if args.prefixes:
        exps = [e for e in exps if any(e["id"].startswith(p) for p in args.prefixes)]
        if not exps:
            raise UserError(f"no experiment id starts with {' or '.join(map(repr, args.prefixes))}; see 'mlreads list'")
    results = _ledger(args)
    times = ledger_times(results) if results is not None else {}
    if args.json:
        rows = [{k: e[k] for k in ("id", "paper", "claim", "paper_value", "budgets", "checks")}
                | {"estimate": {b: estimate(e, b, times) for b in e["budgets"]}} for e in exps]  # fmt: skip
        print(json.dumps(rows, indent=1))
        return 0
    width = max((len(e["id"]) for e in exps), default=10)
    print(f"{'id':<{width}}  {'smoke':>6} {'quick':>9} {'full':>9}  paper: claim")
    for e in exps:
        est = [estimate(e, b, times) for b in BUDGETS]
        print(f"{e['id']:<{width}}  {est[0]:>6} {est[1]:>9} {est[2]:>9}  {e['paper']}: {e['claim']}")
    print("\ntimes: * measured (results ledger); otherwise the budget's limit. 'mlreads show ID' for details.")
    return 0


def cmd_show(args) -> int:
    """From the cached catalogue and the ledger: no torch import (as `list`)."""
    from mlreads.core.report.history import load_history
    from mlreads.core.report.ledger import load_ledger, verdicts
    from mlreads.core.report.show import describe_published, print_show
    from mlreads.core.run.catalog import catalog, seed_rule, select

    entries = select(args.ids)
    results = _ledger(args)
    ledger = load_ledger(results) if results is not None else []
    found = verdicts(ledger, {e["id"]: seed_rule(e) for e in catalog()})
    history = load_history(results, warn=_warn) if results is not None else {}
    out = [describe_published(e, ledger, found, history.get(e["id"], []), results) for e in entries]
    if args.json:
        print(json.dumps(out, indent=1))
        return 0
    for d in out:
        print_show(d, BUDGET_LIMITS)
    return 0


def _warn(message: str) -> None:
    print(f"mlreads: warning: {message}", file=sys.stderr)


def _ledger(args, required: bool = False) -> Path | None:
    from mlreads.core.report.ledger import ledger_folder

    return ledger_folder(getattr(args, "results", None), required, _warn)


# ---------------------------------------------------------------------------------------------- run


def _request(args):
    """argv's `run` options as a RunRequest: ids resolved to experiments, --set parsed into KEY -> VALUE."""
    from mlreads.core.run.config import parse_overrides
    from mlreads.core.run.registry import select
    from mlreads.core.run.request import RunRequest

    return RunRequest(tuple(select(args.ids)), args.budget, args.seed, args.out, parse_overrides(args.overrides),
                      args.threads, args.resume, args.overwrite, args.allow_safe_changes, args.dry_run)  # fmt: skip


def _dry_run(planned) -> int:
    from mlreads.core.fmt import plural
    from mlreads.core.run.config import to_dict

    r = planned.request
    for run in planned.runs:
        threads = r.threads or run.exp.threads_for(r.budget)
        print(f"would run {run.exp.id} [{r.budget}, seed {r.seed}, {plural(threads, 'thread')}] -> {run.folder}")
        print(f"  config: {json.dumps(to_dict(run.cfg), default=str)}")
    return 0


def _verdict_word(result: dict) -> str:
    from mlreads.core.run.verdict import status

    return status(result)[1]


def _headline(result: dict) -> str:
    from mlreads.core.fmt import value

    key = result.get("headline")
    if key and key in result.get("metrics", {}):
        return f"{key} = {value(result['metrics'][key])}"
    return ""


def cmd_run(args) -> int:
    """Parse argv into a RunRequest, let the runner plan it (every check, before anything runs) and execute it; print a
    verdict line per run as it ends, then the summary table."""
    from mlreads.core.run import runner
    from mlreads.core.run.request import plan, summary_table

    planned = plan(_request(args))
    if args.dry_run:
        return _dry_run(planned)
    say = print if other_rank() is None else lambda *a, **k: None  # under torchrun, rank 0 prints the results
    status, rows = 0, []
    for o in runner.execute(planned, on_start=lambda run: _header(run.exp.id, args.budget)):
        exp_id = o.run.exp.id
        if o.result is None:
            say(f"STOPPED {exp_id}: {o.stopped}", flush=True)
            verdict, headline = "stopped (NaN)", ""
        else:
            say(runner.verdict_line(o.result), flush=True)
            verdict, headline = _verdict_word(o.result), _headline(o.result)
        rows.append({"id": exp_id, "verdict": verdict, "headline": headline, "elapsed_s": o.elapsed_s})
        status = max(status, o.status)
    say(summary_table(rows, args.out), flush=True)
    return status


def _header(exp_id: str, budget: str) -> None:
    if sys.stderr.isatty() and other_rank() is None:  # a header for people; piped stderr stays one line per error
        print(f"-> {exp_id} [{budget}]", file=sys.stderr, flush=True)


def cmd_inspect(args) -> int:
    from mlreads.explore import inspect_run

    for line in inspect_run(args.run_dir, args.arm, args.out, args.prompt, args.length, args.temperature, args.n,
                            args.seed):  # fmt: skip
        print(line)
    return 0


# ---------------------------------------------------------------------------------------------- report, ledger, docs


def cmd_report(args) -> int:
    from mlreads.core.report import write_report

    runs = getattr(args, "runs", None)
    if runs is None:  # not given: the default folder when it exists, else the ledger alone
        runs = Path("runs") if Path("runs").is_dir() else None
    elif str(runs) == "none":
        runs = None
    elif not runs.is_dir():
        raise UserError(f"no runs folder {str(runs)!r}; run experiments first, e.g. 'mlreads run all' (or --runs none)")
    try:
        index = write_report(runs, args.out, results=_ledger(args))
    except OSError as e:
        raise UserError(f"cannot write the report to --out {str(args.out)!r} ({e.strerror or e}); choose a writable "
                        "folder") from None  # fmt: skip
    print(f"wrote {index}")
    return 0


def cmd_publish(args) -> int:
    from mlreads.core.report.ledger import publish
    from mlreads.core.run.registry import load_all

    known = load_all()
    status = 0
    for run_dir in args.run_dirs:
        try:
            target = publish(run_dir, args.results, allow_overrides=args.allow_overrides, experiments=known,
                             replace=args.replace)  # fmt: skip
        except OSError as e:
            print(f"mlreads: error: cannot write to --results {str(args.results)!r} ({e.strerror})", file=sys.stderr)
            status = 2
            continue
        except UserError as err:
            print(f"mlreads: error: {err}", file=sys.stderr)
            status = 2
            continue
        kept = target.with_suffix("")
        n = len(list(kept.iterdir())) if kept.is_dir() else 0
        print(f"published {run_dir} -> {target}" + (f" (+ {n} figures and texts in {kept}/)" if n else ""))
    if status == 0:
        print("update the README's table with: mlreads readme-table (paste it between the results markers)")
    return status


def cmd_supersede(args) -> int:
    from mlreads.core.fmt import plural
    from mlreads.core.report.history import resolve_commit, supersede
    from mlreads.core.report.ledger import stale_reasons
    from mlreads.core.run.registry import select

    exps = select([args.id])  # an unknown id: one line with a hint
    if len(exps) != 1 or exps[0].id != args.id:
        raise UserError(f"supersede takes one experiment id, not the prefix {args.id!r}")
    exp = exps[0]
    design = supersede(args.results, exp.id, args.why, resolve_commit(args.commit),
                       stale=lambda e: stale_reasons(e, exp), force=args.force)  # fmt: skip
    entries = plural(len(design.entries), "entry", "entries")
    print(f"superseded {entries} of {exp.id} -> {design.folder}/ (design {design.number}: "
          f"{design.why}; redesign {design.commit[:12]})")  # fmt: skip
    print("update the README's table with: mlreads readme-table (paste it between the results markers)")
    return 0


def cmd_readme_table(args) -> int:
    from mlreads.core.report.ledger import load_ledger, readme_block
    from mlreads.core.run.registry import load_all

    print(readme_block(list(load_all().values()), load_ledger(_ledger(args, required=True))))
    return 0


def cmd_docs(args) -> int:
    from mlreads.core.report.docs import claims_markdown

    text = claims_markdown()
    if args.check:
        if not args.out.is_file():
            raise UserError(f"{args.out} does not exist here: run 'mlreads docs --check' in the mlreads clone, or give "
                            "--out PATH")  # fmt: skip
        if args.out.read_text() != text:
            print(f"{args.out} is out of date: run 'mlreads docs --out {args.out}'", file=sys.stderr)
            return 1
        print(f"{args.out} is up to date")
        return 0
    try:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text)
    except OSError as e:
        raise UserError(f"cannot write {str(args.out)!r} ({e.strerror})") from None
    print(f"wrote {args.out}")
    return 0


HANDLERS = {"list": cmd_list, "show": cmd_show, "run": cmd_run, "inspect": cmd_inspect, "report": cmd_report,
            "publish": cmd_publish, "supersede": cmd_supersede, "readme-table": cmd_readme_table, "docs": cmd_docs}


def main(argv: list[str] | None = None) -> int:
    # Idle OpenMP workers spin by default, which takes a core from everyone else on a shared machine and made 2
    # threads slower than one (docs/cli.md, 'Threads'). Read when the OpenMP runtime starts: before torch is imported.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    argv = sys.argv[1:] if argv is None else list(argv)
    if not argv:
        print(f"mlreads: error: missing command; choose one of {', '.join(COMMANDS)} (see 'mlreads --help')",
              file=sys.stderr)  # fmt: skip
        return 2
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as e:  # argparse already printed its one line (or --help / --version)
        return int(e.code or 0)
    if args.command is None:
        print(f"mlreads: error: missing command; choose one of {', '.join(COMMANDS)} (see 'mlreads --help')",
              file=sys.stderr)  # fmt: skip
        return 2
    rank = other_rank()
    who = f"mlreads (rank {rank})" if rank is not None else "mlreads"
    try:
        return HANDLERS[args.command](args)
    except UserError as err:
        print(f"{who}: error: {_one_line(err)}", file=sys.stderr)
        return 2
    except RunStopped as stop:
        if rank is None:  # every rank stopped at the same step; rank 0 says where and how to resume
            print(f"mlreads: {stop}", file=sys.stderr)
        return stop.exit_code
    except KeyboardInterrupt as err:
        print("mlreads: interrupted", file=sys.stderr)
        return getattr(err, "exit_code", 130)
    except BrokenPipeError:
        return _pipe_closed()
    except OSError as err:  # a write that failed outside the guarded ones (disk full, read-only, permissions)
        where = f": {err.filename}" if err.filename else ""
        print(f"mlreads: error: {err.strerror or err}{where}", file=sys.stderr)
        return 2


def _pipe_closed() -> int:
    """The reader of stdout went away (`mlreads list | head -1`): stop quietly, as `cat` or `yes` do, with the status
    of a process ended by SIGPIPE (141), which `set -o pipefail` reports. stdout is pointed at /dev/null first, so
    the interpreter's final flush cannot fail again and print a warning."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass
    return 128 + 13  # SIGPIPE


def _one_line(err: Exception) -> str:
    return " ".join(str(err).split()) or type(err).__name__


if __name__ == "__main__":
    sys.exit(main())

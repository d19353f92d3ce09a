"""`mlreads`'s argument parser: the commands, their options, help texts and examples (the CLI's handlers are in
cli.py). Parsing errors are one line and exit 2; every option with a value shows its default in --help."""

from __future__ import annotations

import argparse
from pathlib import Path

from mlreads import __version__
from mlreads.core.run.registry import BUDGETS

COMMANDS = ("list", "show", "run", "inspect", "report", "publish", "supersede", "readme-table", "docs")


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line, exit 2, no usage dump
        self.exit(2, f"mlreads: error: {message} (see '{self.prog} --help')\n")


class _Help(argparse.RawDescriptionHelpFormatter):
    """Examples keep their line breaks; every option with a value shows its default."""

    def _get_help_string(self, action):
        text = action.help or ""
        d = action.default
        if "default" in text or d is None or d is False or d == [] or d is argparse.SUPPRESS or not action.option_strings:
            return text
        return f"{text} (default: %(default)s)"


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
_count = _bounded_int(1, 100_000, "a positive integer")


LEDGER_HELP = "results ledger to read (default: results, when it exists here; else one warning line)"

RUN_EXAMPLES = """examples:
  mlreads run gpt/char-lm                        one experiment at the smoke budget (a pipeline check)
  mlreads run gpt/char-lm --budget quick         the claim's check at laptop scale (<= 10 min)
  mlreads run circuits/ s4/                      every experiment under these prefixes
  mlreads run all --budget smoke --threads 1     everything, as `make demo` does
  mlreads run gpt/char-lm --set train.steps=500 --set n_layers=2
  mlreads run gpt/char-lm --set data.path=my_corpus.txt
  mlreads run gpt/char-lm --budget full --resume  continue from the last checkpoint

Each run writes OUT/<id>/<budget>-s<seed>/ (a run with --set overrides: <budget>-s<seed>-<hash>/), holding
result.json, metrics.jsonl, figures and text artifacts. Then: mlreads report."""

INSPECT_EXAMPLES = """examples:
  mlreads inspect runs/gpt/char-lm/quick-s0 --prompt 'ROMEO:' --length 500   text from the trained char model
  mlreads inspect runs/circuits/induction-heads/quick-s0     head scores; the induction head's pattern as a PNG
  mlreads inspect runs/gan/mnist/quick-s0 --out samples      a grid of GAN samples in samples/

Runs keep their trained models in RUN_DIR/models/ (in Python: mlreads.load_run); docs/learn.md walks through it."""

REPORT_EXAMPLES = """examples:
  mlreads report                                  runs/ and results/ -> reports/index.html
  mlreads report --runs my-runs --out my-report
  mlreads report --results results --runs none    only the published ledger

The index shows per claim the reproduction verdicts at quick and full from the results ledger (reproduced, not
reproduced with the failing check, inconclusive with the failing precondition, mixed), with links to the claim's page
(verdicts, seed rule, design history, and its paper's section, code and walkthrough), its code and its paper, and the
runs found under --runs (smoke runs are pipeline checks, never reproductions). A run folder whose result.json is
malformed is skipped with a one-line warning; nothing outside the runs and results folders is read or copied, and
only the registered experiments' and their papers' code files and walkthroughs are linked outside the report."""


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="mlreads", description="Run the ideas of modern ML: experiments, verdicts and a report.",
                epilog="Run 'mlreads COMMAND --help' for a command's options and examples.")  # fmt: skip
    p.add_argument("--version", action="version", version=f"mlreads {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    ls = sub.add_parser("list", help="one row per experiment: id, estimated time per budget, paper and claim",
                        formatter_class=_Help, description="List the registered experiments (fast: no torch import).")  # fmt: skip
    ls.add_argument("prefixes", nargs="*", metavar="PREFIX", help="only ids starting with one of these, e.g. 'mamba/'")
    ls.add_argument("--json", action="store_true", help="print JSON (one object per experiment) instead of a table")
    ls.add_argument("--results", type=Path, default=argparse.SUPPRESS, help=LEDGER_HELP)

    sh = sub.add_parser("show", help="one experiment: claim, paper value, checks and config per budget, published results",
                        formatter_class=_Help)  # fmt: skip
    sh.add_argument("ids", nargs="+", metavar="ID", help="experiment ids or prefixes")
    sh.add_argument("--json", action="store_true", help="print JSON instead of text")
    sh.add_argument("--results", type=Path, default=argparse.SUPPRESS, help=LEDGER_HELP)

    r = sub.add_parser("run", help="run experiments and print their verdicts", formatter_class=_Help,
                       description="Run experiments; print a verdict line per run and a summary.", epilog=RUN_EXAMPLES)  # fmt: skip
    r.add_argument("ids", nargs="+", metavar="ID", help="experiment ids, prefixes such as 'gpt/', or 'all'")
    r.add_argument("--budget", choices=BUDGETS, default="smoke",
                   help="smoke: <= 30 s, a pipeline check run by the tests; quick: <= 10 min, the claim's check at "
                        "laptop scale; full: the paper's scale (hours on a CPU)")  # fmt: skip
    r.add_argument("--seed", type=_seed, default=0,
                   help="the run's seed, 0 to 2^63-1; every random stream is derived from it")  # fmt: skip
    r.add_argument("--out", type=Path, default=Path("runs"), help="output folder")
    r.add_argument("--threads", type=_threads, default=None,
                   help=f"torch threads, 1 to {MAX_THREADS} (default: the experiment's own for the budget, 1 unless "
                        "'mlreads show ID' says otherwise: one is the fastest for most of these small models on a "
                        "2-core machine; docs/cli.md, 'Threads')")  # fmt: skip
    r.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config field, checked against its type; nested fields use dots "
                        "(e.g. train.steps=100); repeatable; 'mlreads show ID' lists the fields (default: none)")  # fmt: skip
    r.add_argument("--resume", action="store_true", help="continue from the run folder's last checkpoint")
    r.add_argument("--dry-run", action="store_true", help="check ids, overrides and data, print the plan, run nothing")
    r.add_argument("--overwrite", action="store_true", help="replace a run folder that holds checkpoints")
    r.add_argument("--allow-safe-changes", action="store_true",
                   help="with --resume: accept more steps and other eval/log/checkpoint cadences than the checkpoint's")

    ins = sub.add_parser("inspect", help="look at a run's trained models: text samples, attention heads, image samples",
                         formatter_class=_Help, description="Rebuild a run's saved models and show what they learned.",
                         epilog=INSPECT_EXAMPLES)  # fmt: skip
    ins.add_argument("run_dir", type=Path, metavar="RUN_DIR", help="a run folder, e.g. runs/gpt/char-lm/quick-s0")
    ins.add_argument("--arm", help="only this saved model (e.g. '2-layer'; default: every one)")
    ins.add_argument("--out", type=Path, help="folder for the PNGs (default: RUN_DIR/inspect)")
    ins.add_argument("--prompt", help="text the language models continue (default: a newline)")
    ins.add_argument("--length", type=_count, default=300, help="tokens sampled from a language model")
    ins.add_argument("--temperature", type=float, default=0.8, help="sampling temperature of the text, 0.01 to 100")
    ins.add_argument("--n", type=_count, help="samples from a GAN or DDPM (default: 64 GAN, 16 DDPM images)")
    ins.add_argument("--seed", type=_seed, default=0, help="seed of every random draw")

    rep = sub.add_parser("report", help="write the static HTML report", formatter_class=_Help,
                         description="Write a static HTML report (no network, no scripts).", epilog=REPORT_EXAMPLES)  # fmt: skip
    rep.add_argument("--runs", type=Path, default=argparse.SUPPRESS,
                     help="runs folder to read (default: runs, when it exists; 'none' for no local runs)")  # fmt: skip
    rep.add_argument("--results", type=Path, default=argparse.SUPPRESS, help=LEDGER_HELP)
    rep.add_argument("--out", type=Path, default=Path("reports"), help="folder the report is written to")

    pub = sub.add_parser("publish", help="copy quick/full runs into the results ledger, with their provenance",
                         formatter_class=_Help,
                         description="Publish runs into the results ledger: results/<id>/<budget>-s<seed>.json.",
                         epilog="example:\n  mlreads publish runs/gpt/char-lm/quick-s0 runs/s4/smnist/quick-s0\n\n"
                                "Refused: smoke runs, runs with --set overrides (unless --allow-overrides), runs made\n"
                                "from uncommitted sources or without a recorded git commit.")  # fmt: skip
    pub.add_argument("run_dirs", nargs="+", type=Path, metavar="RUN_DIR", help="run folders holding result.json")
    pub.add_argument("--results", type=Path, default=Path("results"), help="the ledger folder")
    pub.add_argument("--allow-overrides", action="store_true",
                     help="publish a run with overrides as a variant (<budget>-s<seed>-<hash>.json)")  # fmt: skip
    pub.add_argument("--replace", action="store_true",
                     help="replace an entry published from another commit (a re-run of the same design; after a "
                          "redesign, run 'mlreads supersede' instead)")  # fmt: skip

    sup = sub.add_parser("supersede", help="move a claim's published entries into its design history (after a redesign)",
                         formatter_class=_Help,
                         description="Keep a redesigned claim's old ledger entries, with their evidence, under "
                                     "results/<id>/superseded/design-<n>/ with one line of why and the redesign's "
                                     "commit. Nothing is deleted; the claim's page in the report shows the history.",
                         epilog="example:\n  mlreads supersede alexnet/relu-vs-tanh --why 'ReLU never reached the "
                                "target: the budget was counted as a crossing'\n\nRefused when the entries still "
                                "match the registered experiment (unless --force).")  # fmt: skip
    sup.add_argument("id", metavar="ID", help="the experiment id")
    sup.add_argument("--why", required=True, help="the design flaw, in one line")
    sup.add_argument("--commit", default="HEAD", help="the commit of the redesign")
    sup.add_argument("--results", type=Path, default=Path("results"), help="the ledger folder")
    sup.add_argument("--force", action="store_true",
                     help="supersede although the entries still match the registered experiment (a change the "
                          "ledger cannot see, such as the data pipeline)")  # fmt: skip

    rt = sub.add_parser("readme-table", help="print the README's results table, generated from the ledger",
                        formatter_class=_Help)  # fmt: skip
    rt.add_argument("--results", type=Path, default=argparse.SUPPRESS, help="the ledger folder (default: results)")

    dc = sub.add_parser("docs", help="write docs/claims.md (claims, papers' numbers, checks) from the registry",
                        formatter_class=_Help)  # fmt: skip
    dc.add_argument("--out", type=Path, default=Path("docs/claims.md"), help="file to write")
    dc.add_argument("--check", action="store_true", help="only check that the file is up to date (exit 1 if not)")
    return p

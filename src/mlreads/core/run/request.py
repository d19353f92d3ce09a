"""What `mlreads run` asks of the runner (`RunRequest`), the checks made before anything runs (`plan`), and what
comes back (`Outcome`, `summary_table`).

The CLI parses argv into a `RunRequest`; `plan` resolves every experiment's config, checks its data, and (unless
it is a dry run) validates the torchrun environment, checks that --out is writable and pre-flights every run folder
(resume, overwrite, planted links): all of it before the first run starts, so a typo in the last experiment's
`--set` fails in a second, not after the first experiment's hour. `runner.execute(plan)` then runs the plan;
`runner.run_experiment`, the Python API for one experiment, plans through the same `plan`.

This module imports neither torch nor matplotlib at import time (the data and distributed checks are imported when a
plan is made).
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from mlreads.core.errors import UserError
from mlreads.core.run import runfolder
from mlreads.core.run.config import apply_overrides, validate
from mlreads.core.run.registry import Experiment
from mlreads.core.run.results import run_dir_name


@dataclass(frozen=True)
class RunRequest:
    """One `mlreads run`: which experiments (already resolved from ids and prefixes), at which budget and seed, where,
    with which `--set` overrides (KEY -> VALUE text, not yet parsed against the config's types) and options."""

    experiments: tuple[Experiment, ...]
    budget: str = "smoke"
    seed: int = 0
    out: Path = Path("runs")
    overrides: Mapping[str, str] = field(default_factory=dict)
    threads: int | None = None  # None: each experiment's own default for the budget (Experiment.threads_for)
    resume: bool = False
    overwrite: bool = False
    allow_safe_changes: bool = False
    dry_run: bool = False

    def __post_init__(self):  # frozen all the way down: a tuple, a Path and a read-only mapping
        object.__setattr__(self, "experiments", tuple(self.experiments))
        object.__setattr__(self, "out", Path(self.out))
        object.__setattr__(self, "overrides", MappingProxyType(dict(self.overrides)))


@dataclass(frozen=True)
class PlannedRun:
    """One experiment of a plan: its resolved config and the folder it writes (with --resume, the checkpointed run
    it continues)."""

    exp: Experiment
    cfg: Any
    folder: Path


@dataclass(frozen=True)
class Plan:
    request: RunRequest
    runs: tuple[PlannedRun, ...]


@dataclass(frozen=True)
class Outcome:
    """What one run gave back: its result (result.json's content), or why it stopped (a NaN/Inf loss: `result` is
    None). A run stopped by a signal or refused as bad input gives no outcome: those are raised."""

    run: PlannedRun
    result: dict | None
    stopped: str | None
    elapsed_s: float

    @property
    def status(self) -> int:
        """The exit status this run asks for: 0 when every check passed, 1 when one failed or the run stopped."""
        return 0 if self.result is not None and self.result["verdict"] == "pass" else 1


def plan(request: RunRequest) -> Plan:
    """Check everything that can be checked before a run starts, for every experiment of the request, and return
    what to run. Raises UserError (one line) on the first problem; nothing has run or been written then, except the
    --out folder itself (made to check that it is writable)."""
    from mlreads.core import data
    from mlreads.core.run.torchrun import distributed_env

    exps = request.experiments
    cfgs = []
    for e in exps:
        try:
            cfgs.append(resolve_config(e, request.budget, request.overrides))
        except UserError as err:
            if len(exps) == 1:
                raise
            raise UserError(f"{e.id}: {err}") from None
    for e, cfg in zip(exps, cfgs, strict=True):
        for name in e.requires:
            data.require(name, cfg)
    folders = [run_dir(request.out, e, request.budget, request.seed, request.overrides) for e in exps]
    if not request.dry_run:
        if distributed_env()[1] == 0:  # under torchrun the other ranks write nothing, not even the probe
            check_writable(request.out)
        if request.resume:  # the folder it continues may be another overrides' checkpointed run
            folders = [resume_folder(request.out, e, request.budget, request.seed, f)
                       for e, f in zip(exps, folders, strict=True)]  # fmt: skip
        for folder in folders:
            runfolder.preflight(folder, request.resume, request.overwrite)
    return Plan(request, tuple(PlannedRun(e, c, f) for e, c, f in zip(exps, cfgs, folders, strict=True)))


def resolve_config(exp: Experiment, budget: str, overrides: Mapping[str, str]) -> Any:
    if budget not in exp.configs:
        raise UserError(f"{exp.id} has no {budget!r} budget; it has: {', '.join(exp.budgets)}")
    cfg = apply_overrides(exp.configs[budget], overrides, check=False)
    return validate(cfg, "--set " if overrides else "", examples=exp.configs.values())  # every value, not just types


def check_writable(out: Path) -> None:
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / ".mlreads-write-test"
        probe.write_text("")
        probe.unlink()
    except (OSError, ValueError) as e:  # ValueError: a NUL in the path
        why = getattr(e, "strerror", None) or str(e)
        raise UserError(f"cannot write to --out {str(out)[:80]!r} ({why}); choose a writable folder") from None


def run_dir(out: str | Path, exp: Experiment, budget: str, seed: int, overrides: Mapping[str, str] | None = None
            ) -> Path:  # fmt: skip
    """`OUT/<id>/<budget>-s<seed>[-<hash of the overrides>]`: where one run writes."""
    return Path(out) / exp.id / run_dir_name(budget, seed, overrides)


def resume_folder(out: str | Path, exp: Experiment, budget: str, seed: int, path: Path) -> Path:
    """Where `--resume` continues: the folder of these overrides when it holds checkpoints; otherwise the one
    checkpointed run of this experiment, budget and seed under other overrides (its checkpoint then refuses settings
    that differ, or accepts the safe ones with --allow-safe-changes). Several candidates: say which exist."""
    if runfolder.has_checkpoints(path):
        return path
    prefix = f"{budget}-s{seed}"
    found = sorted(p for p in (Path(out) / exp.id).glob(f"{prefix}*")
                   if (p.name == prefix or p.name.startswith(prefix + "-")) and p.is_dir() and not p.is_symlink()
                   and runfolder.has_checkpoints(p))  # fmt: skip
    if len(found) > 1:
        raise UserError(f"--resume: {len(found)} checkpointed runs of {exp.id} [{budget}, seed {seed}] "
                        f"({', '.join(p.name for p in found)}); give the --set values of the one to continue")
    return found[0] if found else path


def resume_command(request: RunRequest, exp_id: str) -> str:
    """The command line that continues an interrupted run of `exp_id` under this request."""
    r = request
    argv = ["mlreads", "run", exp_id, "--budget", r.budget, "--seed", str(r.seed), "--out", str(r.out)]
    for k, v in r.overrides.items():
        argv += ["--set", f"{k}={v}"]
    if r.threads:
        argv += ["--threads", str(r.threads)]
    return shlex.join([*argv, "--resume"])


def summary_table(rows: list[dict], out: Path) -> str:
    """After a run: id, verdict, headline and time per experiment, then where the results are."""
    from mlreads.core.fmt import duration

    lines = []
    if len(rows) > 1:
        width = max(len(r["id"]) for r in rows)
        lines.append(f"\n{'id':<{width}}  {'verdict':<16} {'time':>9}  headline")
        for r in rows:
            lines.append(f"{r['id']:<{width}}  {r['verdict']:<16} {duration(r['elapsed_s']) if r['elapsed_s'] is not None else '-':>9}  "
                         f"{r['headline']}")  # fmt: skip
    lines.append(f"results in {out}/ ; write the report with: mlreads report --runs {shlex.quote(str(out))}")
    return "\n".join(lines)

"""Run an experiment: seed, set threads, make its folder, call `run`, evaluate its checks and write result.json.

Output layout: `OUT/<id>/<budget>-s<seed>/` holds `result.json`, `metrics.jsonl`, the figures (PNG), text artifacts
and, for runs that train, `checkpoints/`. A run with `--set` overrides goes to `<budget>-s<seed>-<hash>/` (a short hash
of its overrides), so it never overwrites the default run; result.json records the overrides.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from mlreads.core.run.config import apply_overrides, to_dict, validate
from mlreads.core.run import runfolder
from mlreads.core.run import seeding
from mlreads.core.errors import NonFiniteLoss, UserError
from mlreads.core.run.progress import bar
from mlreads.core.run.registry import Experiment, _plain
from mlreads.core.run.results import run_dir_name  # noqa: F401  (re-exported: one rule for run folders)
from mlreads.core.run.verdict import judge, verdict_line  # noqa: F401  (verdict_line re-exported for cli.py)

RESULT_KEYS = (
    "id", "paper", "claim", "budget", "seed", "config", "checks", "preconditions", "verdict", "metrics", "figures",
    "elapsed_s", "cpu_s", "env",
)  # fmt: skip


class RunContext:
    """What a run function gets besides its config: a folder, a logger, figures, text artifacts and progress bars."""

    def __init__(self, path: Path, budget: str, seed: int, threads: int, resume: bool = False,
                 config: dict | None = None, allow_safe_changes: bool = False):  # fmt: skip
        self.dir = Path(path)
        self.budget = budget
        self.seed = seed
        self.threads = threads
        self.resume = resume
        self.config = config  # the resolved config: checkpoints store it, and --resume must match it
        self.allow_safe_changes = allow_safe_changes  # --resume may change steps and cadences (train.SAFE_CHANGES)
        self.figures: list[str] = []
        self.captions: dict[str, str] = {}  # figure file -> what to see in it
        self.texts: dict[str, str] = {}
        self.cpu_start = time.process_time()  # the run's CPU time (all threads of this process) is counted from here
        self.dir.mkdir(parents=True, exist_ok=True)
        self._log = open(self.dir / "metrics.jsonl", "a" if resume else "w")

    def seed_for(self, name: str) -> int:
        """The run's seed derived for one consumer of randomness ("data", "init/gpt", "probe", ...)."""
        return seeding.derive_seed(self.seed, name)

    def generator(self, name: str) -> torch.Generator:
        """A torch.Generator seeded with `seed_for(name)`."""
        return seeding.generator(self.seed, name)

    @property
    def ckpt_dir(self) -> Path:
        return self.dir / "checkpoints"

    def log(self, step: int | None = None, **scalars: Any) -> None:
        row = {"step": step, **{k: _plain(v) for k, v in scalars.items()}} if step is not None else _plain(scalars)
        self._log.write(json.dumps(row) + "\n")
        self._log.flush()

    def truncate_log_after(self, row: dict) -> int:
        """On resume: drop what the interrupted run logged after `row` (the last row its checkpoint holds), so
        metrics.jsonl has each step once. Returns how many rows were dropped (0 when `row` is not found)."""
        path = self.dir / "metrics.jsonl"
        self._log.flush()
        lines = path.read_text().splitlines()
        want = json.loads(json.dumps({k: _plain(v) for k, v in row.items()}))
        for i in range(len(lines) - 1, -1, -1):
            try:
                if json.loads(lines[i]) == want:
                    break
            except json.JSONDecodeError:  # a line torn by the kill
                continue
        else:
            return 0
        self._log.close()
        path.write_text("".join(line + "\n" for line in lines[: i + 1]))
        self._log = open(path, "a")
        return len(lines) - i - 1

    def savefig(self, fig, name: str, caption: str | None = None) -> Path:
        """Save `fig` as `<name>.png`. `caption` says what to see in it (shown under the figure in the report);
        without one the report falls back to the name, so pass a real one."""
        import matplotlib.pyplot as plt

        path = self.dir / (name if name.endswith(".png") else f"{name}.png")
        fig.savefig(path, dpi=110, bbox_inches="tight")
        plt.close(fig)
        if path.name not in self.figures:
            self.figures.append(path.name)
        self.captions[path.name] = caption if caption else default_caption(path.name)
        return path

    def write_text(self, name: str, text: str) -> Path:
        """Write a text artifact. `name` may carry its suffix (`notes.txt`, `table.md`); otherwise `.txt` is added.
        Markdown tables (`.md`, or `|`-tables in any text) are shown as tables in the report."""
        stem, suffix = os.path.splitext(name)
        fname = name if suffix in TEXT_SUFFIXES else f"{name}.txt"
        path = self.dir / fname
        path.write_text(text)
        self.texts[stem if suffix in TEXT_SUFFIXES else name] = path.name
        return path

    def notice(self, message: str) -> None:
        """One line for the person running the experiment (stderr), e.g. 'resuming from step 400'."""
        print(f"   {message}", file=sys.stderr, flush=True)

    def resumed(self, desc: str, step: int | None) -> None:
        """Called by `fit` when --resume is given: the step it resumes from, or None when there is no checkpoint."""
        if not self.resume:
            return
        if step is None:
            self.notice(f"{desc}: --resume: no checkpoint in {self.ckpt_dir}; starting from step 0")
        else:
            self.notice(f"{desc}: resuming from step {step}")

    def progress(self, iterable=None, total: int | None = None, desc: str = "", **kwargs):
        return bar(iterable, total=total, desc=desc, **kwargs)

    def close(self) -> None:
        self._log.close()


TEXT_SUFFIXES = (".txt", ".md", ".csv", ".tsv", ".json")


def default_caption(fname: str) -> str:
    return os.path.splitext(fname)[0].replace("_", " ").replace("-", " ")


def source_provenance() -> dict:
    """The git commit of the mlreads sources and whether they differ from it (`dirty`); None where unknown."""
    src = Path(__file__).resolve().parents[3]  # .../src (an editable install) or site-packages
    info: dict[str, Any] = {"commit": None, "dirty": None}
    try:
        top = subprocess.run(["git", "-C", str(src), "rev-parse", "--show-toplevel", "HEAD"], capture_output=True,
                             text=True, timeout=10)  # fmt: skip
        if top.returncode != 0:
            return info
        root, commit = top.stdout.split()
        if not (Path(root) / "src" / "mlreads").resolve() == Path(__file__).resolve().parents[2]:
            return info  # an installed copy that happens to sit inside some other repository
        status = subprocess.run(["git", "-C", root, "status", "--porcelain", "--", "src", "pyproject.toml"],
                                capture_output=True, text=True, timeout=10)  # fmt: skip
        if status.returncode == 0:
            info = {"commit": commit, "dirty": bool(status.stdout.strip())}
    except (OSError, subprocess.SubprocessError, ValueError):
        pass
    return info


def machine() -> str:
    """A one-line description of the machine: CPU model, cores, memory."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = ""
    try:
        kb = int(Path("/proc/meminfo").read_text().split("MemTotal:")[1].split()[0])
        mem = f", {kb / 2**20:.0f} GiB"
    except (OSError, IndexError, ValueError):
        pass
    return f"{cpu}, {os.cpu_count()} cores{mem}"


def environment(threads: int, provenance: dict | None = None) -> dict:
    """Versions, threads, machine, date, and the sources' git commit (`provenance`: taken when the run started)."""
    import mlreads

    return {
        **(provenance if provenance is not None else source_provenance()),
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": machine(),
        "mlreads": mlreads.__version__,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": np.__version__,
        "platform": platform.platform(),
        "threads": threads,
        "device": "cpu",
        "cpus": os.cpu_count(),
    }


def resolve_config(exp: Experiment, budget: str, overrides: dict[str, str]) -> Any:
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


def run_experiment(
    exp: Experiment,
    budget: str = "smoke",
    seed: int = 0,
    out: str | Path = "runs",
    overrides: dict[str, str] | None = None,
    threads: int | None = None,
    resume: bool = False,
    cfg: Any = None,
    overwrite: bool = False,
    allow_safe_changes: bool = False,
) -> dict:
    """Run one experiment and return its result dict (also written to result.json).

    The run folder is locked for the run (`runfolder.locked`); a folder holding checkpoints is refused without
    `resume` or `overwrite` (which removes them first)."""
    import matplotlib

    matplotlib.use("Agg")
    from mlreads.core import data

    cfg = cfg if cfg is not None else resolve_config(exp, budget, overrides or {})
    for name in exp.requires:
        data.require(name, cfg)
    threads = threads or torch.get_num_threads()
    torch.set_num_threads(threads)
    seeding.seed_everything(seed)

    overrides = dict(overrides or {})
    path = run_dir(out, exp, budget, seed, overrides)
    if resume:
        path = resume_folder(out, exp, budget, seed, path)
    provenance = source_provenance()  # the sources this run imported: before the run, not after
    runfolder.preflight(path, resume, overwrite)
    path.mkdir(parents=True, exist_ok=True)
    with runfolder.locked(path):
        runfolder.preflight(path, resume, overwrite)  # again, now that no other run can change the folder
        if overwrite:
            runfolder.clear_checkpoints(path)
        return _run_locked(exp, budget, seed, path, threads, resume, cfg, allow_safe_changes, overrides, provenance)


def run_dir(out: str | Path, exp: Experiment, budget: str, seed: int, overrides: dict[str, str] | None = None) -> Path:
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


def _run_locked(exp, budget, seed, path, threads, resume, cfg, allow_safe_changes, overrides, provenance) -> dict:
    ctx = RunContext(path, budget, seed, threads, resume=resume, config=json.loads(json.dumps(to_dict(cfg), default=str)),
                     allow_safe_changes=allow_safe_changes)  # fmt: skip
    start = time.perf_counter()
    try:
        metrics = _plain(exp.run(cfg, ctx) or {})
    except NonFiniteLoss as err:  # record the stopped run; an earlier good result.json is kept aside, and said so
        stopped = _result(exp, budget, seed, cfg, {}, ctx, time.perf_counter() - start, threads, overrides, provenance)
        stopped["stopped"] = str(err)
        note = runfolder.record_stop(path, stopped)
        raise NonFiniteLoss(f"{err}; {note}") from None
    finally:
        ctx.close()
    result = _result(exp, budget, seed, cfg, metrics, ctx, time.perf_counter() - start, threads, overrides, provenance)
    runfolder.write_json(path / "result.json", result)
    return result


def _result(exp, budget, seed, cfg, metrics, ctx, elapsed, threads, overrides, provenance) -> dict:
    judged = judge(exp, budget, metrics)  # checks, preconditions and the verdict (core/run/verdict.py)
    result = {
        "id": exp.id,
        "paper": exp.paper,
        "claim": exp.claim,
        "paper_value": exp.paper_value,
        "budget": budget,
        "seed": seed,
        "config": to_dict(cfg),
        "overrides": overrides,
        "checks": judged["checks"],
        "preconditions": judged["preconditions"],
        "verdict": judged["verdict"],
        "metrics": metrics,
        "headline": exp.headline,
        "figures": ctx.figures,
        "captions": ctx.captions,
        "texts": ctx.texts,
        "notes": exp.notes,
        "elapsed_s": round(elapsed, 3),
        "cpu_s": round(time.process_time() - ctx.cpu_start, 3),
        "env": environment(threads, provenance),
    }
    return result

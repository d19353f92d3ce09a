"""Run an experiment: seed, set threads, make its folder, call `run`, evaluate its checks and write result.json.

Output layout: `OUT/<id>/<budget>-s<seed>/` holds `result.json`, `metrics.jsonl`, the figures (PNG), text artifacts
and, for runs that train, `checkpoints/`.
"""

from __future__ import annotations

import json
import os
import platform
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from mlreads.core.config import apply_overrides, to_dict, validate
from mlreads.core import runfolder, seeding
from mlreads.core.errors import NonFiniteLoss, UserError
from mlreads.core.progress import bar
from mlreads.core.registry import Experiment, _plain

RESULT_KEYS = (
    "id", "paper", "claim", "budget", "seed", "config", "checks", "verdict", "metrics", "figures", "elapsed_s", "env",
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
        self.texts: dict[str, str] = {}
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

    def savefig(self, fig, name: str) -> Path:
        import matplotlib.pyplot as plt

        path = self.dir / f"{name}.png"
        fig.savefig(path, dpi=110, bbox_inches="tight")
        plt.close(fig)
        if path.name not in self.figures:
            self.figures.append(path.name)
        return path

    def write_text(self, name: str, text: str) -> Path:
        path = self.dir / f"{name}.txt"
        path.write_text(text)
        self.texts[name] = path.name
        return path

    def progress(self, iterable=None, total: int | None = None, desc: str = "", **kwargs):
        return bar(iterable, total=total, desc=desc, **kwargs)

    def close(self) -> None:
        self._log.close()


def environment(threads: int) -> dict:
    import mlreads

    return {
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

    path = run_dir(out, exp, budget, seed)
    runfolder.preflight(path, resume, overwrite)
    path.mkdir(parents=True, exist_ok=True)
    with runfolder.locked(path):
        runfolder.preflight(path, resume, overwrite)  # again, now that no other run can change the folder
        if overwrite:
            runfolder.clear_checkpoints(path)
        return _run_locked(exp, budget, seed, path, threads, resume, cfg, allow_safe_changes)


def run_dir(out: str | Path, exp: Experiment, budget: str, seed: int) -> Path:
    """`OUT/<id>/<budget>-s<seed>`: where one run writes."""
    return Path(out) / exp.id / f"{budget}-s{seed}"


def _run_locked(exp, budget, seed, path, threads, resume, cfg, allow_safe_changes) -> dict:
    ctx = RunContext(path, budget, seed, threads, resume=resume, config=json.loads(json.dumps(to_dict(cfg), default=str)),
                     allow_safe_changes=allow_safe_changes)  # fmt: skip
    start = time.perf_counter()
    try:
        metrics = _plain(exp.run(cfg, ctx) or {})
    except NonFiniteLoss as err:  # record the stopped run; an earlier good result.json is kept aside, and said so
        stopped = _result(exp, budget, seed, cfg, {}, ctx, time.perf_counter() - start, threads)
        stopped["stopped"] = str(err)
        note = runfolder.record_stop(path, stopped)
        raise NonFiniteLoss(f"{err}; {note}") from None
    finally:
        ctx.close()
    result = _result(exp, budget, seed, cfg, metrics, ctx, time.perf_counter() - start, threads)
    runfolder.write_json(path / "result.json", result)
    return result


def _result(exp, budget, seed, cfg, metrics, ctx, elapsed, threads) -> dict:
    checks = [c.evaluate(metrics) for c in exp.checks[budget]]
    result = {
        "id": exp.id,
        "paper": exp.paper,
        "claim": exp.claim,
        "paper_value": exp.paper_value,
        "budget": budget,
        "seed": seed,
        "config": to_dict(cfg),
        "checks": checks,
        "verdict": "pass" if all(c["passed"] for c in checks) else "fail",
        "metrics": metrics,
        "headline": exp.headline,
        "figures": ctx.figures,
        "texts": ctx.texts,
        "notes": exp.notes,
        "elapsed_s": round(elapsed, 3),
        "env": environment(threads),
    }
    return result


def verdict_line(result: dict) -> str:
    word = "PASS" if result["verdict"] == "pass" else "FAIL"
    parts = []
    for c in result["checks"]:
        measured = c["measured"]
        if isinstance(measured, float):
            measured = f"{measured:.4g}"
        mark = "ok" if c["passed"] else "FAILED"
        parts.append(f"{c['expected']} [measured {measured}: {mark}]")
    return f"{word} {result['id']} [{result['budget']}, seed {result['seed']}, {result['elapsed_s']:.1f}s]: " + "; ".join(
        parts
    )

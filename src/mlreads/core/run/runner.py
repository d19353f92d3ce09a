"""Run an experiment: seed, set threads, make its folder, call `run`, evaluate its checks and write result.json.

`execute(plan)` runs what `request.plan` checked (`mlreads run` and any RunRequest); `run_experiment(exp, budget, ...)`
is the Python API for one experiment, planned by the same `plan`. Failures that are bad input become typed errors
where they are caught (core/errors.py): OutOfMemory, RunFailed (a crash under --set values), RunStopped (a signal).

Output layout: `OUT/<id>/<budget>-s<seed>/` holds `result.json`, `metrics.jsonl`, the figures (PNG), text artifacts,
the trained models (`models/<arm>.safetensors` + `.json`, core/run/saved.py) and, for runs that checkpoint,
`checkpoints/`. A run with `--set` overrides goes to `<budget>-s<seed>-<hash>/` (a short hash
of its overrides), so it never overwrites the default run; result.json records the overrides.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import torch

from mlreads.core.errors import (
    NonFiniteLoss,
    OutOfMemory,
    RunFailed,
    RunStopped,
    UserError,
    cpu_allocation_failed,  # fmt: skip
)
from mlreads.core.fmt import plural
from mlreads.core.run import runfolder, seeding, signals
from mlreads.core.run import saved as saved_models
from mlreads.core.run import torchrun as distributed
from mlreads.core.run.config import to_dict
from mlreads.core.run.progress import bar
from mlreads.core.run.provenance import environment, source_provenance  # noqa: F401  (re-exported)
from mlreads.core.run.registry import Experiment, _plain
from mlreads.core.run.request import (
    Outcome,
    Plan,
    PlannedRun,
    RunRequest,
    plan,
    resume_command,
)
from mlreads.core.run.results import run_dir_name  # noqa: F401  (re-exported: one rule for run folders)
from mlreads.core.run.runlog import RunLog
from mlreads.core.run.sittings import Sittings
from mlreads.core.run.stages import Stages
from mlreads.core.run.torchrun import distributed_env
from mlreads.core.run.verdict import judge, verdict_line  # noqa: F401  (verdict_line re-exported for cli.py)

# The out-of-memory exception of torch's accelerators (CUDA and the others): named at the top level from torch 2.5,
# under torch.cuda before (the same class where both exist).
TORCH_OOM = getattr(torch, "OutOfMemoryError", None) or torch.cuda.OutOfMemoryError

RESULT_KEYS = (
    "id", "paper", "claim", "budget", "seed", "config", "checks", "preconditions", "verdict", "metrics", "figures",
    "elapsed_s", "cpu_s", "env",
)  # fmt: skip


class RunContext:
    """What a run function gets besides its config: a folder, a logger, figures, text artifacts, progress bars and a
    place to keep its trained models (`save_model`).

    `writes=False` (the ranks other than 0 under torchrun) gives a context that writes nothing: the run folder is
    rank 0's. Such a context still reads the folder's checkpoints, which every rank resumes from."""

    def __init__(self, path: Path, budget: str, seed: int, threads: int, resume: bool = False,
                 config: dict | None = None, allow_safe_changes: bool = False, writes: bool = True):  # fmt: skip
        self.dir = Path(path)
        self.budget = budget
        self.seed = seed
        self.threads = threads
        self.resume = resume
        self.config = config  # the resolved config: checkpoints store it, and --resume must match it
        self.allow_safe_changes = allow_safe_changes  # --resume may change steps and cadences (train.SAFE_CHANGES)
        self.writes = writes
        self.figures: list[str] = []
        self.captions: dict[str, str] = {}  # figure file -> what to see in it
        self.texts: dict[str, str] = {}
        self.cpu_start = time.process_time()  # the run's CPU time (all threads of this process) is counted from here
        self.sittings = Sittings(self.dir, resume, writes)  # this sitting, and the earlier ones a resumed run had
        self.stages = Stages(self.ckpt_dir / "stages", resume, writes, on_reuse=self._reused_stage,
                             on_save=lambda name: self.checkpointed())  # fmt: skip
        self._log: RunLog | None = None
        if writes:
            self.dir.mkdir(parents=True, exist_ok=True)
            saved_models.clear_models(self.dir)  # an earlier run's models; this run saves its own at its end
            self._log = RunLog(self.dir / "metrics.jsonl", resume)

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
        if self._log is None:
            return
        row = {"step": step, **{k: _plain(v) for k, v in scalars.items()}} if step is not None else _plain(scalars)
        self._log.write(row)

    @property
    def log_rows(self) -> int | None:
        """The rows this run has logged so far (a checkpoint records it, to continue the log there); None when this
        context writes no log."""
        return None if self._log is None else self._log.cursor

    def continue_log(self, rows: int | None, last_row: dict | None = None) -> int:
        """On resume from a checkpoint that recorded `rows` logged rows (or, from an older checkpoint, whose history
        ends with `last_row`): keep the earlier run's rows up to there, and log the next row after them. Returns how
        many of those rows metrics.jsonl lacks."""
        if self._log is None:
            return 0
        if rows is None:
            rows = self._log.find(last_row) if last_row is not None else None
            if rows is None:
                return 0
        return self._log.seek(rows)

    def flush_log(self) -> None:
        """Put the log on disk as it stands (before a checkpoint, which counts its rows)."""
        if self._log is not None:
            self._log.flush()

    def savefig(self, fig, name: str, caption: str | None = None) -> Path:
        """Save `fig` as `<name>.png`. `caption` says what to see in it (shown under the figure in the report);
        without one the report falls back to the name, so pass a real one."""
        import matplotlib.pyplot as plt

        path = self.dir / (name if name.endswith(".png") else f"{name}.png")
        if self.writes:
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
        if self.writes:
            path.write_text(text)
        self.texts[stem if suffix in TEXT_SUFFIXES else name] = path.name
        return path

    def save_model(self, arm: str, model, **meta: Any) -> Path | None:
        """Keep a trained model in the run folder, `models/<arm>.safetensors` and `models/<arm>.json` (its class,
        config and `meta`), so that `mlreads.load_run(run_dir)` rebuilds it. Call it once per trained arm, at the end
        of the run; `meta` holds JSON values a reader needs beside the weights (core/run/saved.py lists them: the
        vocabulary of a language model, the side of an image model's images, a diffusion model's schedule)."""
        if not self.writes:  # under torchrun only rank 0 writes the run folder
            return None
        return saved_models.save_model(self.dir, arm, model, meta)

    def notice(self, message: str) -> None:
        """One line for the person running the experiment (stderr), e.g. 'resuming from step 400'; rank 0's only."""
        if self.writes:
            print(f"   {message}", file=sys.stderr, flush=True)

    def resumed(self, desc: str, step: int | None, steps: int | None = None) -> None:
        """Called by `fit` when --resume is given: the step it resumes from, or None when there is no checkpoint;
        `steps`, the fit's last step (a model checkpointed there is read back, not trained)."""
        if not self.resume:
            return
        if step is None:
            self.notice(f"{desc}: --resume: no checkpoint in {self.ckpt_dir}; starting from step 0")
        else:
            self.sittings.resumed(desc, step)
            done = " (its last: the finished model is read back, not trained again)" if step == steps else ""
            self.notice(f"{desc}: resuming from step {step}{done}")

    def stage(self, name: str, fn: Callable[[], Any], gens: Sequence[torch.Generator] = (),
              model: torch.nn.Module | None = None) -> Any:  # fmt: skip
        """Run `fn()` as a stage that outlives the sitting (core/run/stages.py): its value (JSON) is kept with the
        state of `gens` after it and a fingerprint of `model`; on --resume a finished stage is read back, its
        generators set as they were after it, instead of run again. For long work after training (evaluations of
        hours), one stage per piece worth keeping. Returns the value's JSON round trip, in every sitting."""
        return self.stages.run(name, fn, gens, model)

    def _reused_stage(self, name: str) -> None:
        self.sittings.reused_stage(name)
        self.notice(f"stage {name}: read back (finished in an earlier sitting)")

    def checkpointed(self) -> None:
        """Called by `fit` after each checkpoint: this sitting is on record up to here (`sittings.json`)."""
        self.sittings.record("running")

    def progress(self, iterable=None, total: int | None = None, desc: str = "", **kwargs):
        return bar(iterable, total=total, desc=desc, enabled=self.writes, **kwargs)

    def close(self, complete: bool = True) -> None:
        """Close the log. `complete=False` (the run stopped early) keeps the earlier run's rows past this run's, which
        later checkpoints of a resumed run still count on."""
        if self._log is not None:
            self._log.close(complete)


TEXT_SUFFIXES = (".txt", ".md", ".csv", ".tsv", ".json")


def default_caption(fname: str) -> str:
    return os.path.splitext(fname)[0].replace("_", " ").replace("-", " ")


def run_experiment(
    exp: Experiment,
    budget: str = "smoke",
    seed: int = 0,
    out: str | Path = "runs",
    overrides: dict[str, str] | None = None,
    threads: int | None = None,
    resume: bool = False,
    overwrite: bool = False,
    allow_safe_changes: bool = False,
) -> dict:
    """Run one experiment and return its result dict (also written to result.json): the Python API, planned by the
    same `request.plan` as `mlreads run` (bad input raises UserError before anything runs).

    The run folder is locked for the run (`runfolder.locked`); a folder holding checkpoints is refused without
    `resume` or `overwrite` (which removes them first). A NaN/Inf loss raises NonFiniteLoss; running out of memory
    raises OutOfMemory; another exception raises RunFailed when `overrides` were given, else propagates as it is."""
    request = RunRequest((exp,), budget, seed, Path(out), overrides or {}, threads, resume, overwrite,
                         allow_safe_changes)  # fmt: skip
    planned = plan(request)
    return run_planned(request, planned.runs[0])


def execute(planned: Plan, on_start: Callable[[PlannedRun], None] | None = None) -> Iterator[Outcome]:
    """Run a plan (nothing for a dry run), one experiment after the other, yielding each one's Outcome as it ends.

    SIGINT/SIGTERM stop at a step boundary (`signals.handle_signals`) and raise RunStopped, whose message says how to
    resume and which experiments of the plan never ran; a NaN/Inf loss ends that run's Outcome as stopped and the next
    experiment runs; bad input raises UserError. `on_start(run)` is called before each run (the CLI prints a header
    there). Under torchrun every rank executes the same plan (see `run_planned`)."""
    request = planned.request
    if request.dry_run:
        return
    with signals.handle_signals():
        try:
            for i, run in enumerate(planned.runs):
                if on_start is not None:
                    on_start(run)
                t0 = time.perf_counter()
                try:
                    result = run_planned(request, run)
                except NonFiniteLoss as err:
                    yield Outcome(run, None, str(err), time.perf_counter() - t0)
                    continue
                except KeyboardInterrupt as sig:  # Interrupted at a step boundary, or Ctrl-C elsewhere (data loading)
                    signum = getattr(sig, "signum", signal.SIGINT)
                    line = stop_message(request, run, signum, getattr(sig, "step", None), getattr(sig, "checkpoint", None))
                    raise RunStopped(line + never_ran(planned.runs[i + 1 :]), 128 + signum) from None
                yield Outcome(run, result, None, result["elapsed_s"])
        finally:
            distributed.leave()


def never_ran(runs: Sequence[PlannedRun]) -> str:
    """The tail of a stop line in a run of several experiments: which ones never started."""
    if not runs:
        return ""
    ids = [r.exp.id for r in runs]
    shown = ", ".join(ids[:8]) + (f" and {len(ids) - 8} more" if len(ids) > 8 else "")
    return f"; {plural(len(ids), 'experiment')} of this run never started: {shown}"


def run_planned(request: RunRequest, run: PlannedRun) -> dict:
    """Run one experiment of a plan in its locked folder; the failures that are bad input become typed errors here,
    where they are caught: out of memory (OutOfMemory), a failed write in the run folder (WriteFailed), or any other
    exception under --set values (RunFailed).

    Under torchrun, rank 0 owns the run folder: it alone takes the lock, sets an earlier run aside, and writes the log,
    figures, checkpoints and result.json; the other ranks write nothing there and read only its checkpoints. Every
    rank starts the run, or none does: rank 0's refusal (a folder in use, say) stops the others at once."""
    import matplotlib

    matplotlib.use("Agg")
    threads = request.threads or run.exp.threads_for(request.budget)
    if distributed_env()[0] > 1 and not request.threads:
        threads = 1  # one thread per rank unless asked: ranks already share the cores
    torch.set_num_threads(threads)
    seeding.seed_everything(request.seed)
    path, overrides = run.folder, dict(request.overrides)
    main = distributed_env()[1] == 0
    provenance = source_provenance()  # the sources this run imported: before the run, not after
    try:
        with contextlib.ExitStack() as stack:
            refused = None
            if main:
                try:
                    _claim(stack, path, request)
                except UserError as err:
                    refused = err
            if not distributed.agree(refused is None):
                raise refused or UserError(f"{run.exp.id}: rank 0 did not start the run (its error says why)")
            resume = request.resume and runfolder.has_checkpoints(path)  # else a fresh run (the earlier one aside)
            return _run_locked(run.exp, request.budget, request.seed, path, threads, resume, run.cfg,
                               request.allow_safe_changes, overrides, provenance, main)  # fmt: skip
    except (NonFiniteLoss, UserError):
        raise
    except (MemoryError, TORCH_OOM) as err:
        raise _out_of_memory(run) from err
    except OSError as err:
        if _inside(err.filename, path):
            raise runfolder.write_failed(err, str(err.filename), "the run stopped") from None
        failed = _failed(run, err, path, overrides, main)
        if failed is err:
            raise  # a bug, not bad input: keep the traceback
        raise failed from err
    except Exception as err:
        if cpu_allocation_failed(err):
            raise _out_of_memory(run) from err
        failed = _failed(run, err, path, overrides, main)
        if failed is err:
            raise
        raise failed from err


def _claim(stack: contextlib.ExitStack, path: Path, request: RunRequest) -> None:
    """Rank 0 takes the run folder: checks it, locks it, and sets an earlier run aside unless this run resumes one."""
    runfolder.preflight(path, request.resume, request.overwrite)  # again: time has passed since the plan
    try:
        path.mkdir(parents=True, exist_ok=True)
        stack.enter_context(runfolder.locked(path))
        runfolder.preflight(path, request.resume, request.overwrite)  # and now that no other run can change it
        if request.overwrite:
            runfolder.clear_checkpoints(path)
        if not (request.resume and runfolder.has_checkpoints(path)):
            runfolder.set_aside(path)
    except OSError as err:
        raise runfolder.write_failed(err, str(err.filename or path), "nothing ran") from None


def _inside(filename, folder: Path) -> bool:
    try:
        return filename is not None and Path(os.fsdecode(filename)).resolve().is_relative_to(folder.resolve())
    except (OSError, ValueError, TypeError):
        return False


def _failed(run: PlannedRun, err: BaseException, path: Path, overrides: dict, main: bool) -> Exception:
    """An unexpected exception: RunFailed naming the --set values when there are some (most likely the cause), else
    the exception itself (a bug, whose traceback must be seen). Under torchrun the cause may be another rank that
    failed first (a collective then fails here): the line says so, and a rank other than 0 never prints a traceback
    (rank 0's is the one to read)."""
    msg = " ".join(str(err).split())[:160] or type(err).__name__
    world, rank = distributed_env()
    if world > 1:
        hint = "; if another rank failed first, its error gives the cause" + ("; else check the --set values"
                                                                              if overrides else "")  # fmt: skip
        if main and not overrides:
            return err
        where = _save_traceback(path) if main else None
        return RunFailed(f"{run.exp.id} failed on rank {rank} ({type(err).__name__}: {msg}){hint}"
                         f"{f' (traceback in {where})' if where else ''}", path, where)  # fmt: skip
    if not overrides:
        return err
    where = _save_traceback(path)
    return RunFailed(f"{run.exp.id} failed with these --set values ({type(err).__name__}: {msg}); check them"
                     f"{f' (traceback in {where})' if where else ''}", path, where)  # fmt: skip


def _out_of_memory(run: PlannedRun) -> OutOfMemory:
    return OutOfMemory(f"{run.exp.id} ran out of memory: reduce the sizes you set with --set (or the batch size)")


def _save_traceback(folder: Path) -> Path | None:
    """Write the exception being handled to `folder/error.txt` (never through a link); None when it cannot be."""
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


def stop_message(request: RunRequest, run: PlannedRun, signum: int, step: int | None = None, checkpoint=None) -> str:
    """One line: which signal stopped what, where the checkpoint is, and the command that resumes."""
    name = signals.NAMES.get(signum, f"signal {signum}")
    at = f" at step {step}" if step is not None else ""
    exp_id = run.exp.id
    if checkpoint is not None or runfolder.has_checkpoints(run.folder):
        saved = f"checkpoint saved in {checkpoint}" if checkpoint is not None else f"checkpoints in {run.folder}"
        how = "resume with" if distributed_env()[0] == 1 else "resume under the same torchrun launch with"
        return f"stopped by {name}{at} ({exp_id}); {saved}; {how}: {resume_command(request, exp_id)}"
    kept = "; the earlier run in the folder is kept as it was" if (run.folder / "result.json").exists() else ""
    return (f"stopped by {name}{at} ({exp_id}){kept}; this run does not checkpoint, so there is nothing to resume: "
            f"rerun it (or set train.ckpt_every to make it resumable)")  # fmt: skip


def _run_locked(exp, budget, seed, path, threads, resume, cfg, allow_safe_changes, overrides, provenance,
                writes: bool = True) -> dict:  # fmt: skip
    """Run the experiment in its claimed folder and write result.json (`writes`: rank 0). A fresh run that stops
    before it completes, with no checkpoint to resume from, puts the earlier run it set aside back."""
    ctx = RunContext(path, budget, seed, threads, resume=resume, config=json.loads(json.dumps(to_dict(cfg), default=str)),
                     allow_safe_changes=allow_safe_changes, writes=writes)  # fmt: skip
    start = time.perf_counter()
    source = provenance or {}
    ctx.sittings.begin(source.get("commit"), source.get("dirty"), threads)
    try:
        metrics = _plain(exp.run(cfg, ctx) or {})
        ctx.close(complete=True)
        ctx.sittings.complete()
    except NonFiniteLoss as err:  # record the stopped run; an earlier good result.json is kept aside, and said so
        ctx.close(complete=False)
        if not writes:
            raise
        stopped = _result(exp, budget, seed, cfg, {}, ctx, time.perf_counter() - start, threads, overrides, provenance)
        stopped["stopped"] = str(err)
        note = runfolder.record_stop(path, stopped)
        raise NonFiniteLoss(f"{err}; {note}") from None
    except BaseException:
        _abandon(ctx, path, resume)
        raise
    result = _result(exp, budget, seed, cfg, metrics, ctx, time.perf_counter() - start, threads, overrides, provenance)
    if writes:
        earlier = (path / runfolder.ASIDE / "result.json").is_file()
        try:
            runfolder.write_json(path / "result.json", result,
                                 kept="the previous result.json is unchanged" if earlier else None)  # fmt: skip
        except BaseException:
            _abandon(ctx, path, resume)
            raise
        runfolder.discard(path)
        ctx.sittings.forget()
        ctx.stages.clear()  # result.json holds what they kept
    return result


def _abandon(ctx: RunContext, path: Path, resume: bool) -> None:
    """The run stopped before completing: close its log, keeping what a resume needs; with nothing to resume from,
    put the earlier run back."""
    try:
        ctx.close(complete=False)
        if ctx.writes and runfolder.has_checkpoints(path):
            ctx.sittings.record("stopped")  # resumable: this sitting is on record for the next
    finally:
        if ctx.writes and not resume and not runfolder.has_checkpoints(path):
            runfolder.restore(path)


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
    if ctx.sittings.resumed_run:  # one run in several sittings: each on record, the times summed over them
        sittings = ctx.sittings.all()
        result["sittings"] = sittings
        result["elapsed_s"] = round(sum(float(s.get("elapsed_s") or 0) for s in sittings), 3)
        result["cpu_s"] = round(sum(float(s.get("cpu_s") or 0) for s in sittings), 3)
    return result

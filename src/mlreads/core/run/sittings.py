"""A run's sittings. A long run that stops (a signal, a session that ends) and continues with `--resume` runs in
several sittings, perhaps days apart. Each sitting is recorded in the run folder's `sittings.json` (rewritten at
every checkpoint, so that a sitting killed without warning is on record up to its last checkpoint); the finished
run's result.json lists them (and the file goes) under "sittings", and its `elapsed_s` and `cpu_s` are the sums over them, so that a
resumed run publishes as one run with its resumptions and its whole cost on record.

A sitting killed without a chance to write (SIGKILL, power) is recorded up to its last checkpoint: the work after
that checkpoint is lost and redone by the next sitting, and its time is not counted.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from mlreads.core.run import runfolder

FILE = "sittings.json"
KILLED = "killed after its last checkpoint"  # a sitting whose record still says "running" when the next one starts


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def read(run_dir: Path) -> list[dict]:
    """The earlier sittings recorded in `run_dir` ([] when none, or the file is unreadable)."""
    try:
        data = json.loads((Path(run_dir) / FILE).read_text())
    except (OSError, ValueError):
        return []
    if not isinstance(data, list):
        return []
    out = [dict(s) for s in data if isinstance(s, dict)]
    for s in out:
        if s.get("ended") == "running":
            s["ended"] = KILLED
    return out


class Sittings:
    """This sitting of a run (and the earlier ones when it resumes). `writes=False`: records nothing on disk."""

    def __init__(self, run_dir: Path, resume: bool, writes: bool = True):
        self.path = Path(run_dir) / FILE
        self.writes = writes
        self.earlier = read(run_dir) if resume else []
        self.current: dict = {"started": _now(), "commit": None, "dirty": None, "threads": None, "resumed_from": {},
                              "elapsed_s": 0.0, "cpu_s": 0.0, "ended": "running"}  # fmt: skip
        self._wall0, self._cpu0 = time.perf_counter(), time.process_time()

    def begin(self, commit: str | None, dirty: bool | None, threads: int) -> None:
        self.current.update(commit=commit, dirty=dirty, threads=threads)

    def resumed(self, desc: str, step: int) -> None:
        """A fit of this run continued from a checkpoint at `step` (one entry per fit: a run may train several)."""
        self.current["resumed_from"][desc] = int(step)

    def reused_stage(self, name: str) -> None:
        """A stage finished in an earlier sitting was read back, not run again (core/run/stages.py)."""
        self.current.setdefault("stages_reused", []).append(name)

    def _until_now(self, ended: str) -> None:
        self.current["elapsed_s"] = round(time.perf_counter() - self._wall0, 3)
        self.current["cpu_s"] = round(time.process_time() - self._cpu0, 3)
        self.current["ended"] = ended

    def record(self, ended: str = "running") -> None:
        """Bring this sitting's times up to now and write every sitting to the run folder."""
        self._until_now(ended)
        if self.writes:
            runfolder.write_json(self.path, self.all())

    def complete(self) -> None:
        """The run completed: this sitting's times are final (result.json records them; see `forget`)."""
        self._until_now("completed")

    def forget(self) -> None:
        """After result.json is written: it holds the record, the file goes."""
        if self.writes:
            self.path.unlink(missing_ok=True)

    def all(self) -> list[dict]:
        return [*self.earlier, self.current]

    @property
    def resumed_run(self) -> bool:
        """True when this run continued an earlier sitting's checkpoint."""
        return bool(self.earlier or self.current["resumed_from"] or self.current.get("stages_reused"))

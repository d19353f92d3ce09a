"""metrics.jsonl: one JSON row per log call, written so that a resumed run's log equals the uninterrupted run's, row for
row.

A fresh run writes its rows in order (an append per row). A resumed run replays: it runs the experiment again from the
start, and every training loop that has a checkpoint skips to it. So the log keeps a cursor, the number of rows this
run has produced so far, and the earlier run's rows in memory:

- a row is written at the cursor: appended at the end of the log, or replacing the earlier run's row there (the same
  row again: the run is deterministic up to its timings);
- a training loop that resumes from a checkpoint moves the cursor to the row count its checkpoint recorded
  (`seek`), keeping the earlier run's rows before it, which this run does not log again;
- `flush()` (before each checkpoint) and `close()` write the whole log atomically: the rows up to the cursor, then,
  unless the run completed, the earlier run's rows after it, which the checkpoints of later training loops still
  count on (an experiment that trains several models resumes each from its own checkpoint).

So nothing is duplicated (a resumed run with no checkpoint overwrites its rows from the first one) and nothing is
lost before the run completes. Rows replaced in memory reach the disk at the next `flush()` or `close()`; until then
the file on disk still holds the earlier run's rows, which every checkpoint written so far agrees with.
"""

from __future__ import annotations

import json
from pathlib import Path

from mlreads.core.run.runfolder import write_text


class RunLog:
    def __init__(self, path: Path, resume: bool):
        self.path = Path(path)
        self.dirty = False  # rows in memory that the file does not hold yet
        self.lines: list[str] = self._read() if resume else []
        self.cursor = 0
        self._file = open(self.path, "a" if resume else "w")

    def _read(self) -> list[str]:
        try:
            text = self.path.read_text(errors="replace")
        except FileNotFoundError:
            return []
        rows = []
        for line in text.splitlines():  # a line torn by a kill is dropped (its row is logged again)...
            try:
                json.loads(line)
            except ValueError:
                self.dirty = True  # ...and the file rewritten, so that its lines are the rows again
                continue
            rows.append(line)
        return rows

    def find(self, row: dict) -> int | None:
        """The row count just after the last row equal to `row` (a checkpoint that recorded no row count), or None."""
        want = json.loads(json.dumps(row))
        for i in range(len(self.lines) - 1, -1, -1):
            logged = json.loads(self.lines[i])
            logged.pop("fit", None)  # fit's label of the model, which its history rows do not carry
            if logged == want:
                return i + 1
        return None

    def write(self, row: dict) -> None:
        line = json.dumps(row)
        if self.cursor == len(self.lines) and not self.dirty:
            self._file.write(line + "\n")
            self._file.flush()
            self.lines.append(line)
        elif self.cursor == len(self.lines):
            self.lines.append(line)
        else:
            self.lines[self.cursor] = line
            self.dirty = True
        self.cursor += 1

    def seek(self, rows: int) -> int:
        """A training loop resumed from a checkpoint that recorded `rows` rows: keep the earlier run's rows up to there.
        Returns how many rows the file lacks (0 normally; more when metrics.jsonl was cut or removed)."""
        missing = max(0, rows - len(self.lines))
        self.cursor = max(self.cursor, min(rows, len(self.lines)))
        return missing

    def flush(self, complete: bool = False) -> None:
        """Write the log as it stands: atomically when rows were replaced or (complete) stale rows must go."""
        stale = complete and self.cursor < len(self.lines)
        if not self.dirty and not stale:
            self._file.flush()
            return
        if stale:
            del self.lines[self.cursor :]
        self._file.close()
        write_text(self.path, "".join(line + "\n" for line in self.lines))
        self._file = open(self.path, "a")
        self.dirty = False

    def close(self, complete: bool = False) -> None:
        try:
            if not self._file.closed:
                self.flush(complete)
        finally:
            self._file.close()

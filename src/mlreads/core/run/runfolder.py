"""The run folder's safety: one process at a time (a lock), no silent overwrite of a checkpointed run, no writes
through symbolic links, atomic JSON writes that say what was kept when the disk is full, and a record of a run that
stopped on a NaN that never silently replaces an earlier good result, and an earlier run kept aside until the run
that replaces it completes (`set_aside`, `restore`, `discard`).

Lock: `OUT/<id>/<budget>-s<seed>/.lock`, held with `flock` for the whole run and naming its holder (pid, host, start
time, command). A second run on the same folder exits 2 naming the holder; a lock whose process is gone (the flock
died with it, or the pid it names is dead) is taken over.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import socket
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from mlreads.core.errors import RunLocked, UserError, WriteFailed

LOCK_NAME = ".lock"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, ValueError):
        return pid > 0
    return True


def _holder(fd: int) -> dict | None:
    try:
        os.lseek(fd, 0, os.SEEK_SET)
        info = json.loads(os.read(fd, 4096).decode("utf-8"))
    except (OSError, ValueError, UnicodeDecodeError, RecursionError):
        return None
    if not isinstance(info, dict) or not isinstance(info.get("pid"), int) or isinstance(info.get("pid"), bool):
        return None
    return info


def _describe(info: dict) -> str:
    cmd = str(info.get("command", ""))[:80]
    started = str(info.get("started", "?"))[:25]
    return f"pid {info['pid']} on {str(info.get('host', '?'))[:40]} (since {started}{'; ' + cmd if cmd else ''})"


@contextmanager
def locked(run_dir: Path) -> Iterator[None]:
    """Hold the run folder's lock for the block, or raise RunLocked naming the holder."""
    run_dir = Path(run_dir)
    lock = run_dir / LOCK_NAME
    if lock.is_symlink():
        lock.unlink()  # never follow a link planted in the run folder
    fd = os.open(lock, os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0), 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            info = _holder(fd)
            who = _describe(info) if info else "another process"
            raise RunLocked(f"run folder {run_dir} is in use by {who}: wait for it to finish, or choose another --out "
                            f"or --seed") from None  # fmt: skip
        info = _holder(fd)
        host = socket.gethostname()
        if info and info["pid"] != os.getpid() and info.get("host") == host and _alive(info["pid"]):
            # No flock but a live process named in the file: a lock written by another tool or over NFS. Honour it.
            raise RunLocked(f"run folder {run_dir} is in use by {_describe(info)}: wait for it to finish, or remove "
                            f"{lock} if that process is not an mlreads run")  # fmt: skip
        me = {"pid": os.getpid(), "host": host, "started": time.strftime("%Y-%m-%dT%H:%M:%S"),
              "command": " ".join(["mlreads", *sys.argv[1:]])[:200]}  # fmt: skip
        os.ftruncate(fd, 0)
        os.lseek(fd, 0, os.SEEK_SET)
        os.write(fd, json.dumps(me).encode())
        try:
            yield
        finally:
            try:
                os.ftruncate(fd, 0)  # the file stays (unlinking a locked file races); empty means free
            except OSError:
                pass
    finally:
        os.close(fd)  # releases the flock


def has_checkpoints(run_dir: Path) -> bool:
    ck = Path(run_dir) / "checkpoints"
    if ck.is_symlink():
        return True
    if not ck.is_dir():
        return False
    return any(p.name == "latest" or p.name.startswith("step-") or (p.parent.name == "stages" and p.suffix == ".json")
               for p in ck.rglob("*"))  # training checkpoints, or finished stages (core/run/stages.py)  # fmt: skip


def preflight(run_dir: Path, resume: bool, overwrite: bool) -> None:
    """Refuse what would lose or leak data: replacing a checkpointed run without --resume or --overwrite, and writing
    through a symbolic link planted in the run folder. Called before anything runs, and again under the lock."""
    run_dir = Path(run_dir)
    if resume and overwrite:
        raise UserError("--resume and --overwrite contradict each other: --resume continues the run in the folder, "
                        "--overwrite replaces it; give one")  # fmt: skip
    if run_dir.is_symlink():
        raise UserError(f"run folder {run_dir} is a symbolic link; mlreads writes only inside --out: remove the link")
    if not run_dir.is_dir():
        if run_dir.exists():
            raise UserError(f"run folder {run_dir} exists and is not a folder: remove it or choose another --out")
        return
    for entry in run_dir.iterdir():
        if entry.is_symlink() and entry.name != LOCK_NAME:
            raise UserError(f"{entry} is a symbolic link; mlreads never writes through links: remove it, or choose "
                            f"another --out")  # fmt: skip
    if has_checkpoints(run_dir) and not resume and not overwrite:
        raise RunLocked(f"{run_dir} holds checkpoints of an earlier run: add --resume to continue it, --overwrite to "
                        f"replace it, or choose another --out or --seed")  # fmt: skip


def clear_checkpoints(run_dir: Path) -> None:
    """--overwrite: remove the earlier run's checkpoints (a link is removed, never followed)."""
    import shutil

    ck = Path(run_dir) / "checkpoints"
    if ck.is_symlink():
        ck.unlink()
    elif ck.exists():
        shutil.rmtree(ck)


def write_text(path: Path, text: str, kept: str | None = None) -> None:
    """Write a file atomically (a temp file, then a rename). A failed write (disk full, a file-size limit) keeps the
    previous file and raises WriteFailed saying so (`kept`: what to say was kept instead)."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    try:
        with open(tmp, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as e:
        try:
            tmp.unlink(missing_ok=True)
        except OSError:
            pass
        if kept is None:
            kept = f"the previous {path.name} is unchanged" if path.exists() else f"no {path.name} was written"
        raise write_failed(e, str(path), kept) from None


def write_failed(err: OSError, what: str, kept: str) -> WriteFailed:
    """One line for a failed write, whichever call raised it: what failed, why, the fix when the disk is full or a
    file-size limit was hit, and what was kept."""
    full = {errno.ENOSPC: " (disk full: free some space and rerun)", errno.EDQUOT: " (disk quota exceeded: free some "
            "space and rerun)", errno.EFBIG: " (file-size limit: raise 'ulimit -f' or write elsewhere)"}  # fmt: skip
    return WriteFailed(f"could not write {what} ({err.strerror or err}){full.get(err.errno, '')}; {kept}")


def write_json(path: Path, obj: Any, kept: str | None = None) -> None:
    """Write JSON atomically; see `write_text`."""
    write_text(path, json.dumps(obj, indent=2), kept)


# ---------------------------------------------------------------------------------------------- an earlier run
#
# A fresh run in a folder that holds an earlier run's files moves them into `.previous/` first, and so never mixes
# two runs: when it completes, `.previous/` is removed; when it stops (a signal, a crash, a failed write) before
# writing a checkpoint, its partial files are removed and the earlier run is put back as it was. A run stopped after
# writing checkpoints (only possible with --overwrite) is the one `--resume` continues, and the earlier run stays in
# `.previous/` until that run completes.

ASIDE = ".previous"
_OWN = {LOCK_NAME, "checkpoints", ASIDE}  # what the run folder keeps across runs


def _remove(entry: Path) -> None:
    import shutil

    if entry.is_dir() and not entry.is_symlink():
        shutil.rmtree(entry)
    else:
        entry.unlink(missing_ok=True)


def set_aside(run_dir: Path) -> None:
    """Move the earlier run's files into `.previous/`. A `.previous/` already there means the last attempt was killed
    before it ended: its partial files are removed, and the earlier run stays aside."""
    run_dir = Path(run_dir)
    aside = run_dir / ASIDE
    entries = [e for e in run_dir.iterdir() if e.name not in _OWN]
    if aside.is_dir() and not aside.is_symlink():
        for e in entries:
            _remove(e)
        return
    if not entries:
        return
    aside.mkdir()
    for e in entries:
        os.replace(e, aside / e.name)


def restore(run_dir: Path) -> bool:
    """Put the earlier run back: remove this run's files, move `.previous/`'s back. False when there is none."""
    run_dir = Path(run_dir)
    aside = run_dir / ASIDE
    if not aside.is_dir() or aside.is_symlink():
        return False
    for e in run_dir.iterdir():
        if e.name not in _OWN:
            _remove(e)
    for e in aside.iterdir():
        os.replace(e, run_dir / e.name)
    aside.rmdir()
    return True


def discard(run_dir: Path) -> None:
    """The run completed: the earlier run it replaced goes."""
    aside = Path(run_dir) / ASIDE
    if aside.is_dir() and not aside.is_symlink():
        _remove(aside)


def record_stop(run_dir: Path, result: dict) -> str:
    """A run stopped (NaN/Inf loss): write its failing result.json, first moving an earlier one to
    result.previous.json. Returns the sentence that says so."""
    run_dir = Path(run_dir)
    current = run_dir / "result.json"
    note = "result.json records the stopped run"
    earlier = next((p for p in (run_dir / ASIDE / "result.json", current) if p.is_file() and not p.is_symlink()), None)
    if earlier is not None:
        try:
            verdict = json.loads(earlier.read_text()).get("verdict", "?")
        except (OSError, ValueError, AttributeError, UnicodeDecodeError):
            verdict = "unreadable"
        os.replace(earlier, run_dir / "result.previous.json")
        note = (f"the earlier result.json (verdict {str(verdict)[:10]}) was moved to result.previous.json; "
                f"result.json records the stopped run")  # fmt: skip
    write_json(current, result)
    discard(run_dir)
    return note

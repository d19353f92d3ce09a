"""The run folder's safety: one process at a time (a lock), no silent overwrite of a checkpointed run, no writes
through symbolic links, atomic JSON writes that say what was kept when the disk is full, and a record of a run that
stopped on a NaN that never silently replaces an earlier good result.

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
    return any(p.name == "latest" or p.name.startswith("step-") for p in ck.rglob("*"))


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


def write_json(path: Path, obj: Any) -> None:
    """Write JSON atomically (a temp file, then a rename). A failed write (disk full) keeps the previous file and
    raises WriteFailed saying so."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    try:
        with open(tmp, "w") as f:
            f.write(json.dumps(obj, indent=2))
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as e:
        try:
            tmp.unlink(missing_ok=True)
        except OSError:
            pass
        kept = f"the previous {path.name} is unchanged" if path.exists() else f"no {path.name} was written"
        full = " (disk full: free some space and rerun)" if e.errno in (errno.ENOSPC, errno.EDQUOT) else ""
        raise WriteFailed(f"could not write {path} ({e.strerror or e}){full}; {kept}") from None


def record_stop(run_dir: Path, result: dict) -> str:
    """A run stopped (NaN/Inf loss): write its failing result.json, first moving an earlier one to
    result.previous.json. Returns the sentence that says so."""
    run_dir = Path(run_dir)
    current = run_dir / "result.json"
    note = "result.json records the stopped run"
    if current.is_file() and not current.is_symlink():
        try:
            verdict = json.loads(current.read_text()).get("verdict", "?")
        except (OSError, ValueError, AttributeError, UnicodeDecodeError):
            verdict = "unreadable"
        os.replace(current, run_dir / "result.previous.json")
        note = (f"the earlier result.json (verdict {str(verdict)[:10]}) was moved to result.previous.json; "
                f"result.json records the stopped run")  # fmt: skip
    write_json(current, result)
    return note

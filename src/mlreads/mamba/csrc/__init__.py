"""The fused CPU selective-scan extension (`selective_scan.cpp`), compiled on first use and cached.

`load()` returns the compiled module, or None when it is switched off (`MLREADS_NO_EXT=1`) or cannot be built (no
C++ compiler, no ninja, a build error); in the last case it warns once, in one line, and the caller falls back to the
pure-PyTorch chunked path. The build lives under `$MLREADS_CACHE/ext` (default `~/.cache/mlreads/ext`), in a folder
named by a hash of the sources (the .cpp and its header), the flags, torch's version and the CPU (the code is built
with -march=native), so a changed source or another machine rebuilds instead of loading a stale or illegal binary.
The sources are compiled from a copy inside that folder, not from the checkout: torch writes their paths into the
folder's build.ninja, and two checkouts of the same sources (a clone and a worktree, say) would otherwise rewrite it
in turn and make ninja rebuild on every first load of either. Processes build one at a time, under an flock on the
folder's build.flock; torch's own build lock found by the holder is a killed build's, and is removed (a cache on a
network file system mounted without locks gets no such guarantee).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import platform
import shutil
import sys
import time
import warnings
from pathlib import Path

import torch

SOURCE = Path(__file__).with_name("selective_scan.cpp")
# what SOURCE #includes from this folder: part of the build key
HEADERS = (Path(__file__).with_name("simd.h"), Path(__file__).with_name("causal_conv.h"))
CFLAGS = ["-O3", "-march=native", "-fopenmp", "-ffp-contract=fast", "-fno-math-errno"]
LDFLAGS = ["-fopenmp"]
_STATE: dict = {}


def cache_dir() -> Path:
    """Where built extensions live: $MLREADS_CACHE/ext, default ~/.cache/mlreads/ext."""
    root = os.environ.get("MLREADS_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "mlreads")
    return Path(root) / "ext"


def _cpu_id() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            lines = [ln for ln in f if ln.startswith(("model name", "flags"))]
        return "".join(sorted(set(lines)))
    except OSError:
        return platform.processor() + platform.machine()


def build_key() -> str:
    h = hashlib.sha256(b"staged-sources-2")  # the build folder's layout (sources copied in, see _staged; 2: the flock)
    for part in (SOURCE.read_bytes(), *(header.read_bytes() for header in HEADERS), " ".join(CFLAGS).encode(),
                 torch.__version__.encode(), _cpu_id().encode(), os.environ.get("CXX", "c++").encode()):
        h.update(part)
    return h.hexdigest()[:12]


def _staged(folder: Path) -> Path:
    """The sources copied into `folder`/src (each rewritten only when missing or different, so that its time stamp,
    which ninja compares, stays put), and the path of the .cpp there: the same for every checkout of these sources."""
    staged = folder / "src"
    staged.mkdir(exist_ok=True)
    for source in (SOURCE, *HEADERS):
        target, data = staged / source.name, source.read_bytes()
        if not target.is_file() or target.read_bytes() != data:
            tmp = target.with_name(f".{target.name}.{os.getpid()}")
            tmp.write_bytes(data)
            tmp.replace(target)  # atomic: a concurrent build reads the old file or the new, never half of one
    return staged / SOURCE.name


def disabled() -> bool:
    return os.environ.get("MLREADS_NO_EXT", "") not in ("", "0")


def _ninja_on_path() -> bool:
    """torch builds with the `ninja` executable on PATH; the `ninja` wheel installs it next to the venv's python,
    which is not on PATH unless the venv is activated (`.venv/bin/python -m pytest` from make), so add its folder."""
    if shutil.which("ninja"):
        return True
    try:
        import ninja

        os.environ["PATH"] = ninja.BIN_DIR + os.pathsep + os.environ.get("PATH", "")
    except (ImportError, AttributeError):
        return False
    return shutil.which("ninja") is not None


STALE_LOCK_S = 600.0  # where no flock can be taken: torch's lock is taken for a killed build's only this old


@contextlib.contextmanager
def _one_build_at_a_time(folder: Path):
    """Hold an exclusive flock on `folder`/build.flock while torch builds or loads the extension; yields whether it
    is held. The kernel releases it when the holder exits, however it exits, so it is never stale: a process that waits
    on it waits for a build that is really running (and says so). Opened read-only: a lock file of another user's
    still locks. A file system without flock (some network mounts) yields False: the build goes on unserialised."""
    try:
        fd = os.open(folder / "build.flock", os.O_RDONLY | os.O_CREAT, 0o666)
    except OSError:
        yield False
        return
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            held = True
        except BlockingIOError:
            print(f"mlreads: waiting for another process that is building the fused kernel in {folder}",
                  file=sys.stderr, flush=True)  # fmt: skip
            fcntl.flock(fd, fcntl.LOCK_EX)
            held = True
        except OSError:  # no locks on this file system
            held = False
        yield held
    finally:
        os.close(fd)  # releases the flock


def clear_killed_build_lock(folder: Path, flocked: bool = True) -> bool:
    """Remove torch's build lock (`folder`/lock), which a build killed mid-way leaves behind and on which torch's
    builder would wait forever. `flocked`: the caller holds `_one_build_at_a_time`; every mlreads build takes that
    flock first, so a `lock` found then is a killed build's, however young. Without it, only a lock older than
    STALE_LOCK_S is taken for a killed build's. True when one was removed."""
    lock = folder / "lock"
    try:
        if not flocked and time.time() - lock.stat().st_mtime <= STALE_LOCK_S:
            return False
        lock.unlink()
        return True
    except FileNotFoundError:
        return False


def load():
    """The compiled extension (the scan's `fwd`, `bwd`; the causal conv's `conv_fwd`, `conv_bwd`), or None (switched off,
    or it cannot be built: warns once)."""
    if disabled():
        return None
    if "module" in _STATE:
        return _STATE["module"]
    module, reason = None, None
    if shutil.which(os.environ.get("CXX", "c++")) is None:
        reason = f"no C++ compiler ({os.environ.get('CXX', 'c++')}) on PATH"
    elif not _ninja_on_path():
        reason = "no ninja (pip install ninja)"
    else:
        try:
            from torch.utils.cpp_extension import load as build

            key = build_key()
            folder = cache_dir() / f"selective_scan-{key}"
            folder.mkdir(parents=True, exist_ok=True)
            with _one_build_at_a_time(folder) as flocked:
                if clear_killed_build_lock(folder, flocked):
                    warnings.warn(f"mlreads: removed the build lock of a killed build in {folder}", RuntimeWarning,
                                  stacklevel=2)
                module = build(name=f"mlreads_selective_scan_{key}", sources=[str(_staged(folder))],
                               extra_cflags=CFLAGS, extra_ldflags=LDFLAGS, build_directory=str(folder), verbose=False)
        except Exception as exc:  # any build failure means: fall back
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            reason = f"build failed ({type(exc).__name__}: {first[:200]})"
    if module is None:
        warnings.warn(f"mlreads: fused selective-scan extension unavailable, {reason}; using the chunked PyTorch "
                      "path (set MLREADS_NO_EXT=1 to skip the build and this message)", RuntimeWarning, stacklevel=3)
    _STATE["module"] = module
    return module


def available() -> bool:
    """True when the fused kernel is built (or loads from the cache) and not switched off."""
    return load() is not None

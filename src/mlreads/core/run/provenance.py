"""Where a run comes from: the git commit of the mlreads sources (and whether they differ from it), the machine, and
the versions and threads that result.json's `env` records."""

from __future__ import annotations

import os
import platform
import subprocess
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch


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
    """Versions, threads, machine, date, the sources' git commit (`provenance`: taken when the run started), and the
    number of processes (`ranks`: more than 1 under torchrun)."""
    import mlreads
    from mlreads.core.run.torchrun import distributed_env

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
        "ranks": distributed_env()[0],
        "device": "cpu",
        "cpus": os.cpu_count(),
    }

"""A checkpoint's state.json, validated before anything is restored: its keys and types, the optimiser's parameter
groups and scalars, the RNG states, the history rows (an integer step, increasing; numbers where the figures plot
them), what `fit` saves to continue its log exactly, and the run's config and data, which `--resume` must match.
Every failure is one CheckpointError line naming the file. core/train/checkpoint.py writes, finds and loads
checkpoints; this module only judges their state."""

from __future__ import annotations

import json
import math
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from mlreads.core.errors import CheckpointError
from mlreads.core.fields import INT_MAX
from mlreads.core.train.config import TrainConfig

MAX_STATE_BYTES = 256 * 2**20
SAFE_CHANGES = ("steps", "eval_every", "log_every", "ckpt_every", "time_limit_s")  # --allow-safe-changes
_FIX = "delete that checkpoint folder (or rerun with --overwrite) to start over"


def _ckpt_file(path: Path, name: str) -> Path:
    f = path / name
    if f.is_symlink() or not f.is_file():
        raise CheckpointError(f"{f}: missing or not a regular file; {_FIX}")
    return f


def _kind(x: Any) -> str:
    if isinstance(x, bool):
        return "bool"
    if isinstance(x, int | float):
        return "number"
    if isinstance(x, list | tuple):
        return "list"
    return type(x).__name__


def _read_state(path: Path, opt, cfg: TrainConfig) -> dict:
    f = _ckpt_file(path, "state.json")
    bad = lambda why: CheckpointError(f"{f}: {why}; {_FIX}")  # noqa: E731
    if f.stat().st_size > MAX_STATE_BYTES:
        raise bad(f"too large ({f.stat().st_size} bytes)")
    try:
        state = json.loads(f.read_bytes().decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise bad("not valid JSON (truncated or edited?)") from None
    if not isinstance(state, dict):
        raise bad("not a JSON object")
    need = {"step": int, "param_groups": list, "optim_scalars": dict, "rng_python": list, "rng_numpy": list,
            "history": list}  # fmt: skip
    for key, tp in need.items():
        if key not in state:
            raise bad(f"has no {key!r}")
        if not isinstance(state[key], tp) or isinstance(state[key], bool):
            raise bad(f"{key!r} is {_kind(state[key])}, expected {tp.__name__}")
    step = state["step"]
    if not 1 <= step <= INT_MAX:
        raise bad(f"step {step} is out of range")
    current = opt.state_dict()["param_groups"]
    groups = state["param_groups"]
    if len(groups) != len(current):
        raise bad(f"{len(groups)} optimiser parameter groups, this run has {len(current)} (another model or config?)")
    for g, c in zip(groups, current):
        if not isinstance(g, dict) or set(g) != set(c):
            raise bad("optimiser parameter groups with other keys (another optimiser?)")
        for k in c:
            if _kind(g[k]) != _kind(c[k]) and not (g[k] is None or c[k] is None):
                raise bad(f"optimiser setting {k!r} is {_kind(g[k])}, expected {_kind(c[k])}")
            if _kind(g[k]) == "number" and not math.isfinite(g[k]):
                raise bad(f"optimiser setting {k!r} is not finite")
        if g["params"] != c["params"]:
            raise bad("optimiser parameter groups hold other parameters (another model?)")
    n_params = sum(len(c["params"]) for c in current)
    for key, value in state["optim_scalars"].items():
        idx, _, _name = key.partition(".")
        if not idx.isdigit() or int(idx) >= n_params or _kind(value) not in ("number", "bool"):
            raise bad(f"bad optimiser scalar {key!r}")
    try:
        py = state["rng_python"]
        random.Random().setstate((py[0], tuple(py[1]), py[2]))
        npst = state["rng_numpy"]
        np.random.RandomState().set_state((npst[0], np.array(npst[1], dtype=np.uint32), *npst[2:]))
    except (TypeError, ValueError, IndexError, OverflowError, KeyError):
        raise bad("damaged random-number-generator state") from None
    _check_history(state["history"], step, bad)
    _check_extra(state, bad)
    return state


def _number(x: Any) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool)


def _check_history(history: list, step: int, bad: Callable[[str], CheckpointError]) -> None:
    """History rows as `fit` logs them: objects with an integer step, increasing, none past the checkpoint's step;
    the loss, lr and time of a row are numbers (the figures plot them)."""
    last = 0
    for i, row in enumerate(history):
        if not isinstance(row, dict):
            raise bad(f"history row {i} is {_kind(row)}, not an object")
        s = row.get("step")
        if not isinstance(s, int) or isinstance(s, bool):
            raise bad(f"history row {i} has no integer 'step'")
        if not last < s <= step:
            raise bad(f"history row {i} is at step {s}, after step {last} and at most {step} expected")
        last = s
        for key, value in row.items():
            if (key in ("loss", "lr", "elapsed_s") or key.startswith("loss_")) and not _number(value):
                raise bad(f"history row {i}: {key!r} is {_kind(value)}, not a number")


def _check_extra(state: dict, bad: Callable[[str], CheckpointError]) -> None:
    """What `fit` saves to continue its log exactly (absent in checkpoints of older versions): the losses of the steps
    since the last logged row, the training time so far, the log's row count, and the last evaluation's metrics."""
    window = state.get("log_window", [])
    if not isinstance(window, list) or not all(_number(v) for v in window):
        raise bad("'log_window' is not a list of numbers")
    phases = state.get("phase_window", {})
    if not isinstance(phases, dict) or not all(isinstance(v, list) and all(_number(x) for x in v)
                                                for v in phases.values()):  # fmt: skip
        raise bad("'phase_window' is not an object of number lists")
    elapsed = state.get("elapsed_s", 0.0)
    if not _number(elapsed) or not 0 <= elapsed < 1e9:
        raise bad("'elapsed_s' is not a time in seconds")
    final = state.get("final", {})
    if not isinstance(final, dict):
        raise bad("'final' is not an object of evaluation metrics")
    rows = state.get("log_rows")
    if rows is not None and (not isinstance(rows, int) or isinstance(rows, bool) or not 0 <= rows <= INT_MAX):
        raise bad("'log_rows' is not a row count")


def _flat(d: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(d, dict):
        out = {}
        for k, v in d.items():
            out.update(_flat(v, f"{prefix}{k}."))
        return out
    return {prefix[:-1]: d}


def config_diff(saved: dict, now: dict) -> list[tuple[str, Any, Any]]:
    """[(dotted key, saved value, current value)] for every key that differs."""
    a, b = _flat(saved), _flat(now)
    missing = object()
    diff = []
    for k in sorted(set(a) | set(b)):
        va, vb = a.get(k, missing), b.get(k, missing)
        if va != vb and not (isinstance(va, list | tuple) and isinstance(vb, list | tuple) and list(va) == list(vb)):
            diff.append((k, "(none)" if va is missing else va, "(none)" if vb is missing else vb))
    return diff


def _check_match(state: dict, path: Path, meta: dict, cfg: TrainConfig, allow_safe: bool) -> None:
    """Refuse a resume whose config or data differ from the checkpoint's (one line with the differing keys)."""
    f = path / "state.json"
    if not isinstance(state.get("config"), dict) or not isinstance(state.get("data"), str | None):
        raise CheckpointError(f"{f}: has no config to check this run against (an older or edited checkpoint); {_FIX}")
    diff = config_diff(state["config"], meta["config"])
    refused = [d for d in diff if not (allow_safe and d[0].rsplit(".", 1)[-1] in SAFE_CHANGES)]
    if refused:
        shown = ", ".join(f"{k.removeprefix('run.')}: {_short(a)} -> {_short(b)}" for k, a, b in refused[:6])
        more = f" (and {len(refused) - 6} more)" if len(refused) > 6 else ""
        hint = " (--allow-safe-changes accepts only " + "/".join(SAFE_CHANGES) + ")" if allow_safe else ""
        raise CheckpointError(f"--resume: the checkpoint {path} was made with another config: {shown}{more}; rerun "
                              f"with the same --set values, or --overwrite to start over{hint}")  # fmt: skip
    if state["step"] > cfg.steps:
        raise CheckpointError(f"--resume: the checkpoint {path} is at step {state['step']}, past train.steps="
                              f"{cfg.steps}; give at least {state['step']} steps")  # fmt: skip
    if state.get("data") != meta.get("data"):
        raise CheckpointError(f"--resume: the training data differs from the checkpoint's {path} (first-batch "
                              f"fingerprint {state.get('data')} -> {meta.get('data')}): the data file, its settings or "
                              f"the seed changed; use the same data, or --overwrite to start over")  # fmt: skip


def _short(v: Any) -> str:
    s = json.dumps(v) if not isinstance(v, str) else v
    return s if len(s) <= 30 else s[:27] + "..."

"""Atomic checkpoints (safetensors + state.json, never pickle), validated before anything is restored."""

from __future__ import annotations

import hashlib
import json
import math
import os
import random
import re
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import Tensor, nn

from mlreads.core.errors import CheckpointError
from mlreads.core.fields import INT_MAX
from mlreads.core.train.ckpt_state import (  # noqa: F401  (SAFE_CHANGES, config_diff: the checkpoint's API)
    _FIX,
    SAFE_CHANGES,
    _check_match,
    _ckpt_file,
    _read_state,
    config_diff,
)
from mlreads.core.train.config import TrainConfig

if TYPE_CHECKING:
    pass


# ---------------------------------------------------------------------------------------------- checkpoints
#
# A checkpoint is input: everything read back is validated before anything is restored (the `latest` pointer must
# name a `step-NNNNNNN` folder inside the checkpoint folder; safetensors headers, sizes, dtypes and shapes must match
# the model and optimiser; state.json must have its keys with the right types and a step in range), and a failure is
# one `CheckpointError` line naming the file. The checkpoint also stores the run's resolved config and a fingerprint
# of its data (a hash of the first batch under `data_seed`), and `--resume` refuses a run that differs.

CKPT_NAME = re.compile(r"step-\d{7,12}")
MAX_HEADER_BYTES = 100 * 2**20
_ST_SIZES = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I16": 2, "I8": 1, "U8": 1, "BOOL": 1,
             "U16": 2, "U32": 4, "U64": 8, "F8_E4M3": 1, "F8_E5M2": 1, "C64": 8}  # fmt: skip
_TORCH_ST = {torch.float64: "F64", torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16",
             torch.int64: "I64", torch.int32: "I32", torch.int16: "I16", torch.int8: "I8", torch.uint8: "U8",
             torch.bool: "BOOL", torch.complex64: "C64"}  # fmt: skip


def _unwrap(model: nn.Module) -> nn.Module:
    return model.module if hasattr(model, "module") and isinstance(model, nn.parallel.DistributedDataParallel) else model


def data_fingerprint(batch_fn: Callable[[int, torch.Generator], Any], data_seed: int) -> str:
    """A hash of the first batch `batch_fn` draws under `data_seed` (from a generator of its own): it changes when the
    data file, its tokenization, the batch shape or the data seed change."""
    h = hashlib.sha256()

    def feed(x: Any) -> None:
        if isinstance(x, Tensor):
            t = x.detach().cpu().contiguous()
            h.update(f"{t.dtype}{tuple(t.shape)}".encode())
            h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
        elif isinstance(x, tuple | list):
            h.update(b"[")
            for item in x:
                feed(item)
            h.update(b"]")
        elif isinstance(x, dict):
            for k in sorted(x, key=str):
                h.update(str(k).encode())
                feed(x[k])
        elif isinstance(x, np.ndarray):
            feed(torch.from_numpy(np.ascontiguousarray(x)))
        else:
            h.update(repr(x).encode())

    feed(batch_fn(0, torch.Generator().manual_seed(data_seed)))
    return h.hexdigest()[:16]


def _write_file(path: Path, data: bytes) -> None:
    """Write bytes and fsync: every checkpoint file goes through Python's own write, so a full disk or a file-size
    limit is an OSError with its errno, whichever library serialized the data."""
    with open(path, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def _model_tensors(model: nn.Module) -> dict[str, Tensor]:
    """The model's state as separate tensors; a tied weight (two names, one tensor) is saved once, under its first
    name (`load_model` knows the other name from the model)."""
    out, seen = {}, set()
    for key, t in _unwrap(model).state_dict().items():
        tied = (t.data_ptr(), tuple(t.shape), t.stride(), t.dtype) if t.numel() else None
        if tied is not None and tied in seen:
            continue
        seen.add(tied)
        out[key] = t.detach().clone().contiguous()
    return out


def save_checkpoint(ckpt_dir: Path, step: int, model: nn.Module, opt, gen: torch.Generator, history: list,
                    meta: dict | None = None, extra: dict | None = None) -> Path:  # fmt: skip
    """Write a checkpoint folder atomically: files into a temp folder, rename it, then replace `latest`.

    A failed write (a full disk, a file-size limit, a quota) removes the partial folder and raises WriteFailed: the
    previous checkpoint and the `latest` pointer are untouched. Any other failure (an interruption included) removes
    the partial folder too, then propagates. `meta` (the run's config and data fingerprint) and `extra` (the log
    window, elapsed time and log row count of `fit`) go into state.json.
    """
    from safetensors.torch import save

    from mlreads.core.run.runfolder import write_failed

    ckpt_dir = Path(ckpt_dir)
    name = f"step-{step:07d}"
    tmp = ckpt_dir / f".{name}.tmp"
    previous = _pointer_name(ckpt_dir)
    kept = f"the previous checkpoint {ckpt_dir / previous} is intact" if previous else "no earlier checkpoint exists"
    aside = None
    try:
        ckpt_dir.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
        _write_file(tmp / "model.safetensors", save(_model_tensors(model)))
        opt_state = opt.state_dict()
        tensors, scalars = {}, {}
        for idx, st in opt_state["state"].items():
            for key, value in st.items():
                if isinstance(value, Tensor):
                    tensors[f"state.{idx}.{key}"] = value.detach().contiguous().clone()
                else:
                    scalars[f"{idx}.{key}"] = value
        tensors["rng.torch"] = torch.get_rng_state()
        tensors["rng.gen"] = gen.get_state()
        _write_file(tmp / "optim.safetensors", save(tensors))
        np_state = np.random.get_state()
        state = {
            "step": step,
            "param_groups": opt_state["param_groups"],
            "optim_scalars": scalars,
            "rng_python": [list(x) if isinstance(x, tuple) else x for x in random.getstate()],
            "rng_numpy": [np_state[0], np_state[1].tolist(), *np_state[2:]],
            "history": history,
            **(extra or {}),
            **(meta or {}),
        }
        _write_file(tmp / "state.json", json.dumps(state).encode())
        final = ckpt_dir / name
        if final.exists():  # the same step again: move the old one aside, never leave `latest` dangling
            aside = ckpt_dir / f".{name}.old"
            shutil.rmtree(aside, ignore_errors=True)
            os.replace(final, aside)
        os.replace(tmp, final)
        latest_tmp = ckpt_dir / ".latest.tmp"
        latest_tmp.write_text(name)
        os.replace(latest_tmp, ckpt_dir / "latest")
    except BaseException as e:
        _undo(ckpt_dir, name, tmp, aside, keep_new=previous == name)
        if isinstance(e, OSError):
            raise write_failed(e, f"checkpoint {ckpt_dir / name}", kept) from None
        raise
    if aside is not None:
        shutil.rmtree(aside, ignore_errors=True)
    for old in ckpt_dir.glob("step-*"):
        if old.name != name:
            shutil.rmtree(old, ignore_errors=True)
    return final


def _undo(ckpt_dir: Path, name: str, tmp: Path, aside: Path | None, keep_new: bool) -> None:
    """After a failed checkpoint write: remove every partial file; `latest` names a complete folder as before."""
    try:
        shutil.rmtree(tmp, ignore_errors=True)
        (ckpt_dir / ".latest.tmp").unlink(missing_ok=True)
        final = ckpt_dir / name
        if not keep_new:  # `latest` does not name it: a folder renamed into place before the pointer failed
            shutil.rmtree(final, ignore_errors=True)
        if aside is not None and aside.exists():
            if final.exists():
                shutil.rmtree(aside, ignore_errors=True)
            else:
                os.replace(aside, final)  # the same step's earlier checkpoint goes back
    except OSError:
        pass  # the error being reported says more than a failed clean-up


def _pointer_name(ckpt_dir: Path) -> str | None:
    try:
        return latest_checkpoint(ckpt_dir).name  # type: ignore[union-attr]
    except (CheckpointError, AttributeError, OSError):
        return None


def latest_checkpoint(ckpt_dir: Path) -> Path | None:
    """The folder `ckpt_dir/latest` names; without a pointer, the newest complete `step-NNNNNNN` folder (a run killed
    between renaming its checkpoint into place and writing the pointer, or a pointer removed by hand); None when there
    is neither. A pointer that is not a short ASCII `step-NNNNNNN` naming an existing folder directly inside
    `ckpt_dir`, or step folders none of which is complete, is a CheckpointError."""
    ckpt_dir = Path(ckpt_dir)
    pointer = ckpt_dir / "latest"
    if not pointer.exists() and not pointer.is_symlink():
        return _newest_step_folder(ckpt_dir)
    if pointer.is_symlink() or not pointer.is_file():
        raise CheckpointError(f"{pointer}: the checkpoint pointer is not a regular file; {_FIX}")
    try:
        with open(pointer, "rb") as f:
            raw = f.read(65)
    except OSError as e:
        raise CheckpointError(f"{pointer}: cannot read the checkpoint pointer ({e.strerror})") from None
    try:
        name = raw.decode("ascii").strip()
    except UnicodeDecodeError:
        raise CheckpointError(f"{pointer}: the checkpoint pointer is not text; {_FIX}") from None
    if not CKPT_NAME.fullmatch(name):
        shown = name if len(name) <= 40 else name[:37] + "..."
        raise CheckpointError(f"{pointer}: names {shown!r}, not a checkpoint folder (step-NNNNNNN) of this run; {_FIX}")
    path = ckpt_dir / name
    if path.is_symlink() or not path.is_dir():
        raise CheckpointError(f"{pointer}: names {name}, which is missing or not a folder; {_FIX}")
    return path


CKPT_FILES = ("model.safetensors", "optim.safetensors", "state.json")


def _newest_step_folder(ckpt_dir: Path) -> Path | None:
    try:
        steps = [p for p in ckpt_dir.iterdir() if CKPT_NAME.fullmatch(p.name) and p.is_dir() and not p.is_symlink()]
    except OSError:  # no checkpoint folder (yet)
        return None
    complete = [p for p in steps if all((p / f).is_file() and not (p / f).is_symlink() for f in CKPT_FILES)]
    if complete:
        return max(complete, key=lambda p: int(p.name[5:]))
    if steps:
        raise CheckpointError(f"{ckpt_dir}: no 'latest' pointer, and no step folder holds a complete checkpoint "
                              f"({', '.join(sorted(p.name for p in steps)[:3])}); {_FIX}")  # fmt: skip
    return None


def read_safetensors_header(path: Path) -> dict[str, tuple[str, tuple[int, ...]]]:
    """Validate a safetensors file without loading it: {name: (dtype, shape)}. A pickle (torch.save, plain pickle) in
    its place is refused by its first bytes, never unpickled."""
    try:
        size = path.stat().st_size
        with open(path, "rb") as f:
            head = f.read(8)
            if len(head) < 8:
                raise CheckpointError(f"{path}: truncated ({size} bytes); {_FIX}")
            n = int.from_bytes(head, "little")
            if n < 2 or n > min(size - 8, MAX_HEADER_BYTES):
                if head[:1] == b"\x80" or head[:2] == b"PK" or head[:1] in (b"(", b"c", b"]", b"}"):
                    raise CheckpointError(f"{path}: a pickle or torch.save file, not safetensors (refused without "
                                          f"unpickling); {_FIX}")  # fmt: skip
                raise CheckpointError(f"{path}: not a safetensors file or truncated (header length {n}, file "
                                      f"{size} bytes); {_FIX}")  # fmt: skip
            raw = f.read(n)
    except OSError as e:
        raise CheckpointError(f"{path}: cannot read ({e.strerror}); {_FIX}") from None
    try:
        header = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise CheckpointError(f"{path}: damaged safetensors header (not JSON); {_FIX}") from None
    if not isinstance(header, dict):
        raise CheckpointError(f"{path}: damaged safetensors header (not an object); {_FIX}")
    data_len = size - 8 - n
    out, spans = {}, []
    for key, info in header.items():
        if key == "__metadata__":
            continue
        ok = (isinstance(info, dict) and info.get("dtype") in _ST_SIZES and isinstance(info.get("shape"), list)
              and all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in info["shape"])
              and isinstance(info.get("data_offsets"), list) and len(info["data_offsets"]) == 2
              and all(isinstance(o, int) and not isinstance(o, bool) for o in info["data_offsets"]))  # fmt: skip
        if not ok:
            raise CheckpointError(f"{path}: damaged safetensors entry {key!r}; {_FIX}")
        a, b = info["data_offsets"]
        nbytes = math.prod(info["shape"]) * _ST_SIZES[info["dtype"]]
        if not 0 <= a <= b <= data_len or b - a != nbytes:
            raise CheckpointError(f"{path}: tensor {key!r} lies outside the file or has the wrong size (truncated?); "
                                  f"{_FIX}")  # fmt: skip
        spans.append((a, b))
        out[key] = (info["dtype"], tuple(info["shape"]))
    end = 0
    for a, b in sorted(spans):
        if a != end:
            raise CheckpointError(f"{path}: tensors overlap or leave gaps (a damaged file); {_FIX}")
        end = b
    if end != data_len:
        raise CheckpointError(f"{path}: {data_len - end} bytes past the last tensor (a damaged file); {_FIX}")
    return out


def _check_model_file(path: Path, model: nn.Module) -> None:
    header = read_safetensors_header(path)
    sd = _unwrap(model).state_dict()
    for key, (dtype, shape) in header.items():
        if key not in sd:
            raise CheckpointError(f"{path}: holds {key!r}, which this model does not have (another model?); {_FIX}")
        want = (_TORCH_ST.get(sd[key].dtype), tuple(sd[key].shape))
        if (dtype, shape) != want:
            raise CheckpointError(f"{path}: {key!r} is {dtype} {list(shape)}, the model needs {want[0]} "
                                  f"{list(want[1])} (another config?); {_FIX}")  # fmt: skip
    saved = {sd[k].data_ptr() for k in header}
    for key, t in sd.items():
        if key not in header and not (t.numel() and t.data_ptr() in saved):
            raise CheckpointError(f"{path}: has no tensor {key!r} for this model (another model?); {_FIX}")


def _check_optim_file(path: Path, opt, gen: torch.Generator) -> None:
    header = read_safetensors_header(path)
    params = [p for g in opt.param_groups for p in g["params"]]
    rng_sizes = {"rng.torch": torch.get_rng_state().numel(), "rng.gen": gen.get_state().numel()}
    for key, size in rng_sizes.items():
        if header.get(key) != ("U8", (size,)):
            raise CheckpointError(f"{path}: {key} is missing or not a {size}-byte RNG state; {_FIX}")
    for key, (dtype, shape) in header.items():
        if key in rng_sizes:
            continue
        parts = key.split(".", 2)
        if len(parts) != 3 or parts[0] != "state" or not parts[1].isdigit() or int(parts[1]) >= len(params):
            raise CheckpointError(f"{path}: unexpected tensor {key!r} (another optimiser or model?); {_FIX}")
        p = params[int(parts[1])]
        if shape not in ((), tuple(p.shape)) or (shape == tuple(p.shape) and shape and dtype != _TORCH_ST.get(p.dtype)):
            raise CheckpointError(f"{path}: {key!r} is {dtype} {list(shape)}, the parameter is {list(p.shape)}; {_FIX}")


def load_checkpoint(path: Path, model: nn.Module, opt, gen: torch.Generator, cfg: TrainConfig | None = None,
                    meta: dict | None = None, allow_safe: bool = False) -> dict:  # fmt: skip
    """Validate every file of the checkpoint, then restore weights, optimiser, RNG states; return the JSON state.

    With `meta` (the current run's config and data fingerprint) a checkpoint made by another config or on other data
    is refused. Nothing is restored unless every check passes. Every failure is a CheckpointError naming the file.
    """
    from safetensors.torch import load_file, load_model

    path = Path(path)
    cfg = cfg or TrainConfig(steps=INT_MAX)
    model_file, optim_file = _ckpt_file(path, "model.safetensors"), _ckpt_file(path, "optim.safetensors")
    state = _read_state(path, opt, cfg)
    if meta is not None:
        _check_match(state, path, meta, cfg, allow_safe)
    elif state["step"] > cfg.steps:
        raise CheckpointError(f"{path / 'state.json'}: step {state['step']} is past train.steps={cfg.steps}")
    _check_model_file(model_file, model)
    _check_optim_file(optim_file, opt, gen)
    try:
        tensors = load_file(str(optim_file))
        opt_state: dict = {"state": {}, "param_groups": state["param_groups"]}
        for key, value in tensors.items():
            if key.startswith("state."):
                _, idx, name = key.split(".", 2)
                opt_state["state"].setdefault(int(idx), {})[name] = value
        for key, value in state["optim_scalars"].items():
            idx, name = key.split(".", 1)
            opt_state["state"].setdefault(int(idx), {})[name] = value
        for group in opt_state["param_groups"]:  # JSON turned tuples into lists
            if "betas" in group and isinstance(group["betas"], list):
                group["betas"] = tuple(group["betas"])
        load_model(_unwrap(model), str(model_file))
        opt.load_state_dict(opt_state)
        torch.set_rng_state(tensors["rng.torch"])
        gen.set_state(tensors["rng.gen"])
    except (RuntimeError, ValueError, KeyError, TypeError, OSError) as e:  # safetensors' own checks, a racing edit
        first = (str(e).strip().splitlines() or [type(e).__name__])[0][:200]
        raise CheckpointError(f"{path}: cannot restore the checkpoint ({first}); {_FIX}") from None
    py = state["rng_python"]
    random.setstate((py[0], tuple(py[1]), py[2]))
    npst = state["rng_numpy"]
    np.random.set_state((npst[0], np.array(npst[1], dtype=np.uint32), *npst[2:]))
    return state

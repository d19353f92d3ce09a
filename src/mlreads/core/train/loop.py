"""`fit()`: the one training loop every paper uses.

It owns what every experiment needs and none should rewrite: optimiser parameter groups (decay / no decay, per-group
learning rates), linear warmup + cosine schedule, gradient clipping, evaluation at a cadence, a progress bar, atomic
checkpoints with bit-exact resume on CPU, a clear stop on a non-finite loss, and DDP under `torchrun`.

Determinism contract: `batch_fn(step, gen)` draws randomness only from `gen`, a generator that `fit` seeds with
`data_seed` (by default the run's seed derived for "data", so every model an experiment trains sees the same batches)
and checkpoints. With the global torch RNG (dropout) and the optimiser state also saved, a resumed run on CPU produces
the same weights, bit for bit, as an uninterrupted one.

Checkpoint layout (rank 0 writes; each checkpoint is a folder renamed into place, then `latest` is replaced):

    checkpoints/latest                  the name of the newest complete checkpoint folder
    checkpoints/step-0000400/model.safetensors   the weights
    checkpoints/step-0000400/optim.safetensors   optimiser tensors and RNG states
    checkpoints/step-0000400/state.json          step, optimiser hyper-parameters, RNG seeds, history

Inside an experiment run (`ctx` given, no explicit `ckpt_dir`) each `fit` call checkpoints under
`checkpoints/<desc>/`, so an experiment that trains several models resumes each from its own checkpoints.
Nothing is ever loaded through pickle.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import random
import re
import shutil
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import torch
from torch import Tensor, nn

from mlreads.core.run import signals
from mlreads.core.run.config import INT_MAX, to_dict
from mlreads.core.errors import CheckpointError, Interrupted, NonFiniteLoss, UserError, WriteFailed
from mlreads.core.run.progress import bar as progress_bar

if TYPE_CHECKING:
    from mlreads.core.run.runner import RunContext


@dataclass(frozen=True)
class TrainConfig:
    steps: int = 1000
    lr: float = 1e-3  # peak learning rate of groups that do not set their own
    min_lr: float = 0.0  # cosine floor, as a fraction of each group's lr is min_lr / lr
    warmup: int = 0  # steps of linear warmup
    schedule: Literal["cosine", "constant", "rsqrt"] = "cosine"  # rsqrt: warmup, then lr * sqrt(warmup / step);
    # without warmup lr / sqrt(t) (Adam Section 6.1), with it Vaswani et al.'s Eq. 3
    weight_decay: float = 0.0
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-8
    grad_clip: float | None = 1.0  # max global grad norm; None turns clipping off
    optimizer: Literal["adamw", "adam", "sgd"] = "adamw"
    eval_every: int = 0  # 0: evaluate only at the end
    ckpt_every: int = 0  # 0: no checkpoints
    log_every: int = 10
    time_limit_s: float | None = None  # stop early after this many seconds (breaks bit-exact resume)
    clock: Literal["wall", "cpu"] = "wall"  # what time_limit_s and the logged elapsed_s measure; "cpu": this
    # process's CPU time, the fair clock for equal-time comparisons on a shared machine (one torch thread)


@dataclass(frozen=True)
class Phase:
    """One update inside a training step: `loss_fn(model, batch)` on a fresh batch, `repeats` times, moving only
    `params(model)` (all parameters when None). The optimiser is shared: parameters outside the phase get no
    gradient, so their optimiser state does not advance (Adam/SGD skip parameters whose grad is None)."""

    name: str
    loss_fn: Callable[[nn.Module, Any], Tensor]
    params: Callable[[nn.Module], Iterable[nn.Parameter]] | None = None
    repeats: int = 1


@dataclass
class TrainResult:
    history: list[dict] = field(default_factory=list)
    final: dict = field(default_factory=dict)
    steps: int = 0
    elapsed_s: float = 0.0
    stopped_early: bool = False

    def series(self, key: str) -> tuple[list[int], list[float]]:
        """(steps, values) of one logged quantity, e.g. result.series("val_loss")."""
        rows = [r for r in self.history if key in r]
        return [r["step"] for r in rows], [r[key] for r in rows]


def rsqrt_factor(step: int, warmup: int) -> float:
    """Linear warmup to 1 at step `warmup`, then decay as sqrt(warmup / step) (steps counted from 1): the inverse
    square-root schedule, min(step / warmup, sqrt(warmup / step))."""
    step, warmup = max(step, 1), max(warmup, 1)
    return min(step / warmup, math.sqrt(warmup / step))


def lr_factor(step: int, cfg: TrainConfig) -> float:
    """The schedule's multiplier at `step` (0-based): linear warmup, then cosine to min_lr / lr (or constant, or
    the inverse square root)."""
    if cfg.schedule == "rsqrt":
        return rsqrt_factor(step + 1, cfg.warmup)
    if cfg.warmup and step < cfg.warmup:
        return (step + 1) / cfg.warmup
    if cfg.schedule == "constant":
        return 1.0
    floor = cfg.min_lr / cfg.lr if cfg.lr else 0.0
    progress = min(1.0, (step - cfg.warmup) / max(1, cfg.steps - cfg.warmup))
    return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * progress))


def param_groups(
    model: nn.Module,
    weight_decay: float,
    no_decay: Callable[[str, nn.Parameter], bool] | None = None,
    own_lr: Callable[[str, nn.Parameter], bool] | None = None,
    lr: float | None = None,
) -> list[dict]:
    """Optimiser parameter groups: weight decay on matrices (ndim >= 2), none on biases, norms and other vectors.

    `no_decay(name, p)` exempts more parameters from decay (Mamba's A_log). `own_lr(name, p)` moves parameters into
    a group of their own at learning rate `lr` with no decay (S4's state-space parameters). Empty groups are dropped.
    """
    decay, rest, special = [], [], []
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        if own_lr is not None and own_lr(name, p):
            special.append(p)
        elif p.ndim >= 2 and not (no_decay is not None and no_decay(name, p)):
            decay.append(p)
        else:
            rest.append(p)
    groups = [{"params": decay, "weight_decay": weight_decay}, {"params": rest, "weight_decay": 0.0}]
    if special:
        if lr is None:
            raise ValueError("param_groups: own_lr needs lr, the learning rate of that group")
        groups.append({"params": special, "weight_decay": 0.0, "lr": lr})
    return [g for g in groups if g["params"]]


def recipe(
    steps: int,
    lr: float,
    *,
    warmup: int = 0,
    min_lr_frac: float = 0.1,
    weight_decay: float = 0.0,
    betas: tuple[float, float] = (0.9, 0.999),
    grad_clip: float | None = 1.0,
    schedule: Literal["cosine", "constant", "rsqrt"] = "cosine",
    optimizer: Literal["adamw", "adam", "sgd"] = "adamw",
    eval_every: int = 0,
    log_every: int = 10,
    ckpt_every: int = 0,
) -> TrainConfig:
    """The usual recipe in one call: `optimizer` at peak `lr`, linear warmup, cosine to `min_lr_frac * lr`."""
    return TrainConfig(steps=steps, lr=lr, min_lr=lr * min_lr_frac, warmup=warmup, schedule=schedule,
                       weight_decay=weight_decay, betas=betas, grad_clip=grad_clip, optimizer=optimizer,
                       eval_every=eval_every, log_every=log_every, ckpt_every=ckpt_every)  # fmt: skip


OptimizerFactory = Callable[[list[dict]], torch.optim.Optimizer]


def make_optimizer(
    groups: list[dict], cfg: TrainConfig, factory: OptimizerFactory | None = None
) -> torch.optim.Optimizer:
    """`cfg.optimizer` over `groups`, or `factory(groups)` when given: any torch.optim.Optimizer (the project's own
    Adam or SophiaG, torch's Adagrad); each group arrives with its lr and weight_decay filled in from `cfg`."""
    groups = [{"lr": cfg.lr, "weight_decay": cfg.weight_decay, **g} for g in groups]
    for g in groups:
        g["base_lr"] = g["lr"]
    if factory is not None:
        return factory(groups)
    if cfg.optimizer == "adamw":
        return torch.optim.AdamW(groups, lr=cfg.lr, betas=cfg.betas, eps=cfg.eps)
    if cfg.optimizer == "adam":
        return torch.optim.Adam(groups, lr=cfg.lr, betas=cfg.betas, eps=cfg.eps)
    return torch.optim.SGD(groups, lr=cfg.lr, momentum=cfg.betas[0])


# ---------------------------------------------------------------------------------------------- distributed


@dataclass(frozen=True)
class Dist:
    rank: int = 0
    world: int = 1

    @property
    def main(self) -> bool:
        return self.rank == 0


def distributed_env() -> tuple[int, int]:
    """(world size, rank) from the `torchrun` environment, validated; (1, 0) without one. A malformed or partial
    environment (WORLD_SIZE=abc, WORLD_SIZE=2 without RANK or MASTER_ADDR) is a UserError, one line."""
    raw = os.environ.get("WORLD_SIZE", "").strip()
    if not raw:
        return 1, 0
    fix = "launch with torchrun, or unset WORLD_SIZE, RANK, MASTER_ADDR and MASTER_PORT to run in one process"
    if not raw.isdigit() or not 1 <= int(raw) <= 65536:
        raise UserError(f"WORLD_SIZE={raw[:20]!r} is not a process count (a stale torchrun environment?): {fix}")
    world = int(raw)
    if world == 1:
        return 1, 0
    missing = [k for k in ("RANK", "MASTER_ADDR", "MASTER_PORT") if not os.environ.get(k, "").strip()]
    if missing:
        raise UserError(f"WORLD_SIZE={world} but {', '.join(missing)} {'is' if len(missing) == 1 else 'are'} not set: "
                        f"{fix}")  # fmt: skip
    rank, port = os.environ["RANK"].strip(), os.environ["MASTER_PORT"].strip()
    if not rank.isdigit() or int(rank) >= world:
        raise UserError(f"RANK={rank[:20]!r} is not a rank below WORLD_SIZE={world}: {fix}")
    if not port.isdigit() or not 1 <= int(port) <= 65535:
        raise UserError(f"MASTER_PORT={port[:20]!r} is not a port number: {fix}")
    local = os.environ.get("LOCAL_RANK", "0").strip() or "0"
    if not local.isdigit():
        raise UserError(f"LOCAL_RANK={local[:20]!r} is not a rank: {fix}")
    return world, int(rank)


def init_distributed() -> Dist:
    """Join the process group that `torchrun` describes (gloo on CPU, nccl on GPU); a no-op for one process.

    Joining waits at most `MLREADS_DIST_TIMEOUT` seconds (default 120) for the other ranks, then fails with one line:
    a stale torchrun environment in a shell never hangs a run."""
    world, _rank = distributed_env()
    if world == 1:
        return Dist()
    import datetime

    import torch.distributed as dist

    if not dist.is_initialized():
        try:
            timeout = float(os.environ.get("MLREADS_DIST_TIMEOUT", "120"))
        except ValueError:
            timeout = 120.0
        try:
            dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo",
                                    timeout=datetime.timedelta(seconds=timeout))  # fmt: skip
        except Exception as e:  # DistStoreError, RuntimeError, OSError, ValueError from the rendezvous
            where = f"{os.environ.get('MASTER_ADDR')}:{os.environ.get('MASTER_PORT')}"
            first = (str(e).strip().splitlines() or [type(e).__name__])[0][:120]
            raise UserError(f"could not join the process group of WORLD_SIZE={world} at {where} within {timeout:g} s "
                            f"({first}); a stale torchrun environment? unset WORLD_SIZE and RANK to run in one "
                            f"process") from None  # fmt: skip
    return Dist(dist.get_rank(), dist.get_world_size())


def shard(batch: Any, d: Dist) -> Any:
    """This rank's slice (along dim 0) of the global batch."""
    if d.world == 1:
        return batch
    if isinstance(batch, Tensor):
        if batch.shape[0] % d.world:
            raise ValueError(f"global batch {batch.shape[0]} is not divisible by world size {d.world}")
        return batch.tensor_split(d.world)[d.rank]
    if isinstance(batch, tuple | list):
        return type(batch)(shard(b, d) for b in batch)
    if isinstance(batch, dict):
        return {k: shard(v, d) for k, v in batch.items()}
    return batch


def _all_finite(loss: Tensor, d: Dist) -> bool:
    ok = torch.tensor(float(torch.isfinite(loss.detach()).all()))
    if d.world > 1:
        import torch.distributed as dist

        dist.all_reduce(ok, op=dist.ReduceOp.MIN)
    return bool(ok.item())


# ---------------------------------------------------------------------------------------------- checkpoints
#
# A checkpoint is input: everything read back is validated before anything is restored (the `latest` pointer must
# name a `step-NNNNNNN` folder inside the checkpoint folder; safetensors headers, sizes, dtypes and shapes must match
# the model and optimiser; state.json must have its keys with the right types and a step in range), and a failure is
# one `CheckpointError` line naming the file. The checkpoint also stores the run's resolved config and a fingerprint
# of its data (a hash of the first batch under `data_seed`), and `--resume` refuses a run that differs.

CKPT_NAME = re.compile(r"step-\d{7,12}")
MAX_STATE_BYTES = 256 * 2**20
MAX_HEADER_BYTES = 100 * 2**20
SAFE_CHANGES = ("steps", "eval_every", "log_every", "ckpt_every", "time_limit_s")  # --allow-safe-changes
_ST_SIZES = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I16": 2, "I8": 1, "U8": 1, "BOOL": 1,
             "U16": 2, "U32": 4, "U64": 8, "F8_E4M3": 1, "F8_E5M2": 1, "C64": 8}  # fmt: skip
_TORCH_ST = {torch.float64: "F64", torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16",
             torch.int64: "I64", torch.int32: "I32", torch.int16: "I16", torch.int8: "I8", torch.uint8: "U8",
             torch.bool: "BOOL", torch.complex64: "C64"}  # fmt: skip
_FIX = "delete that checkpoint folder (or rerun with --overwrite) to start over"


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


def _write_failed(err: OSError, what: str, kept: str) -> WriteFailed:
    reason = err.strerror or str(err)
    return WriteFailed(f"could not write {what} ({reason}); {kept}")


def save_checkpoint(ckpt_dir: Path, step: int, model: nn.Module, opt, gen: torch.Generator, history: list,
                    meta: dict | None = None) -> Path:  # fmt: skip
    """Write a checkpoint folder atomically: files into a temp folder, rename it, then replace `latest`.

    A failed write (a full disk) removes the partial folder and raises WriteFailed: the previous checkpoint and the
    `latest` pointer are untouched. `meta` (the run's config and data fingerprint) goes into state.json.
    """
    from safetensors.torch import save_file, save_model

    ckpt_dir = Path(ckpt_dir)
    name = f"step-{step:07d}"
    tmp = ckpt_dir / f".{name}.tmp"
    previous = _pointer_name(ckpt_dir)
    kept = f"the previous checkpoint {ckpt_dir / previous} is intact" if previous else "no earlier checkpoint exists"
    try:
        ckpt_dir.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
        save_model(_unwrap(model), str(tmp / "model.safetensors"))
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
        save_file(tensors, str(tmp / "optim.safetensors"))
        np_state = np.random.get_state()
        state = {
            "step": step,
            "param_groups": opt_state["param_groups"],
            "optim_scalars": scalars,
            "rng_python": [list(x) if isinstance(x, tuple) else x for x in random.getstate()],
            "rng_numpy": [np_state[0], np_state[1].tolist(), *np_state[2:]],
            "history": history,
            **(meta or {}),
        }
        with open(tmp / "state.json", "w") as f:
            f.write(json.dumps(state))
            f.flush()
            os.fsync(f.fileno())
        final = ckpt_dir / name
        aside = None
        if final.exists():  # the same step again: move the old one aside, never leave `latest` dangling
            aside = ckpt_dir / f".{name}.old"
            shutil.rmtree(aside, ignore_errors=True)
            os.replace(final, aside)
        os.replace(tmp, final)
        latest_tmp = ckpt_dir / ".latest.tmp"
        latest_tmp.write_text(name)
        os.replace(latest_tmp, ckpt_dir / "latest")
    except OSError as e:
        shutil.rmtree(tmp, ignore_errors=True)
        (ckpt_dir / ".latest.tmp").unlink(missing_ok=True)
        if previous != name:
            shutil.rmtree(ckpt_dir / name, ignore_errors=True)
        raise _write_failed(e, f"checkpoint {ckpt_dir / name}", kept) from None
    if aside is not None:
        shutil.rmtree(aside, ignore_errors=True)
    for old in ckpt_dir.glob("step-*"):
        if old.name != name:
            shutil.rmtree(old, ignore_errors=True)
    return final


def _pointer_name(ckpt_dir: Path) -> str | None:
    try:
        return latest_checkpoint(ckpt_dir).name  # type: ignore[union-attr]
    except (CheckpointError, AttributeError, OSError):
        return None


def latest_checkpoint(ckpt_dir: Path) -> Path | None:
    """The folder `ckpt_dir/latest` names, or None when there is no pointer. A pointer that is not a short ASCII
    `step-NNNNNNN` naming an existing folder directly inside `ckpt_dir` is a CheckpointError."""
    ckpt_dir = Path(ckpt_dir)
    pointer = ckpt_dir / "latest"
    if not pointer.exists() and not pointer.is_symlink():
        return None
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


def _ckpt_file(path: Path, name: str) -> Path:
    f = path / name
    if f.is_symlink() or not f.is_file():
        raise CheckpointError(f"{f}: missing or not a regular file; {_FIX}")
    return f


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
    if not all(isinstance(r, dict) for r in state["history"]):
        raise bad("'history' rows are not objects")
    return state


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


# ---------------------------------------------------------------------------------------------- the loop


def fit(
    model: nn.Module,
    cfg: TrainConfig,
    batch_fn: Callable[[int, torch.Generator], Any],
    loss_fn: Callable[[nn.Module, Any], Tensor] | Sequence[Phase],
    eval_fn: Callable[[nn.Module], dict[str, float]] | None = None,
    ctx: RunContext | None = None,
    groups: list[dict] | None = None,
    ckpt_dir: str | Path | None = None,
    resume: bool | None = None,
    desc: str = "train",
    data_seed: int | None = None,
    optimizer: OptimizerFactory | None = None,
    after_step: Callable[[int, nn.Module, torch.optim.Optimizer, Any], None] | None = None,
) -> TrainResult:
    """Train `model` for `cfg.steps` optimiser steps and return its history. See the module docstring.

    `loss_fn` is one loss, or a sequence of `Phase`s taken in order at every step (alternating updates of parts of
    the model, such as a GAN's k discriminator steps then one generator step); the logged "loss" is the last
    phase's, and each phase's mean is logged as `loss_<name>`.
    `groups`: optimiser parameter groups (default `param_groups(model, cfg.weight_decay)`). `data_seed`: the seed of
    the generator `batch_fn` draws from (default: `ctx.seed_for("data")`, or 0 without a context). `optimizer`: a
    factory `groups -> Optimizer` that replaces `cfg.optimizer` (see `make_optimizer`). `after_step(done, model, opt,
    batch)` runs after each optimiser step (`done` steps taken): a max-norm projection, Sophia's Hessian refresh.
    """
    d = init_distributed()
    if ckpt_dir is None and ctx is not None:  # one folder per model of the experiment, named by `desc`
        ckpt_dir = ctx.ckpt_dir / re.sub(r"[^A-Za-z0-9_.-]+", "-", desc)
    ckpt_dir = Path(ckpt_dir) if ckpt_dir is not None else None
    resume = resume if resume is not None else bool(ctx is not None and ctx.resume)
    opt = make_optimizer(groups or param_groups(model, cfg.weight_decay), cfg, optimizer)
    if data_seed is None:
        data_seed = ctx.seed_for("data") if ctx is not None else 0
    gen = torch.Generator().manual_seed(data_seed)
    train_model = model
    if d.world > 1:
        train_model = nn.parallel.DistributedDataParallel(model)

    result = TrainResult()
    start_step = 0
    meta = _run_meta(cfg, ctx, batch_fn, data_seed) if ckpt_dir is not None and (cfg.ckpt_every or resume) else None
    if resume and ckpt_dir is not None and (path := latest_checkpoint(ckpt_dir)) is not None:
        state = load_checkpoint(path, model, opt, gen, cfg=cfg, meta=meta,
                                allow_safe=bool(getattr(ctx, "allow_safe_changes", False)))  # fmt: skip
        start_step, result.history = state["step"], state["history"]
        if ctx is not None and d.main and result.history:
            ctx.truncate_log_after(result.history[-1])  # rows logged after the checkpoint are logged again below
        if ctx is not None and d.main:
            ctx.resumed(desc, start_step)  # "resuming from step N"
    elif resume and ctx is not None and d.main:
        ctx.resumed(desc, None)  # "--resume: no checkpoint ...; starting from step 0"

    phases = list(loss_fn) if isinstance(loss_fn, Sequence) else [Phase("loss", loss_fn)]
    owned_sets = [None if ph.params is None else {id(p) for p in ph.params(model)} for ph in phases]
    phase_window: dict[str, list[float]] = {ph.name: [] for ph in phases} if len(phases) > 1 else {}
    bar = progress_bar(total=cfg.steps, initial=start_step, desc=desc, enabled=d.main)
    now = time.process_time if cfg.clock == "cpu" else time.perf_counter
    t0 = now()
    window: list[float] = []
    done = start_step  # optimiser steps taken so far
    for step in signals.steps(range(start_step, cfg.steps)):  # a signal now stops at the step boundary
        factor = lr_factor(step, cfg)
        for g in opt.param_groups:
            g["lr"] = g["base_lr"] * factor
        model.train()
        for phase, owned in zip(phases, owned_sets):
            for _ in range(phase.repeats):
                batch = shard(batch_fn(step, gen), d)
                loss = phase.loss_fn(train_model, batch)
                if not _all_finite(loss, d):
                    last = _pointer_name(ckpt_dir) if ckpt_dir is not None else None
                    kept = (f"last good checkpoint kept at {ckpt_dir / last}" if last
                            else "no checkpoint was written (set ckpt_every)")  # fmt: skip
                    raise NonFiniteLoss(f"loss became {loss.item()} at step {step}; training stopped, {kept}")
                opt.zero_grad(set_to_none=True)
                loss.backward()
                if owned is not None:  # only this phase's parameters move: the others' gradients are dropped
                    for p in model.parameters():
                        if id(p) not in owned:
                            p.grad = None
                if cfg.grad_clip:
                    nn.utils.clip_grad_norm_([p for p in model.parameters() if p.grad is not None], cfg.grad_clip)
                opt.step()
            if len(phases) > 1:
                phase_window[phase.name].append(loss.item())

        done = step + 1
        if after_step is not None:
            after_step(done, model, opt, batch)
        window.append(loss.item())
        row: dict[str, Any] = {}
        if done % cfg.log_every == 0 or done == cfg.steps:
            # the schedule on the configured lr (groups with their own lr follow the same factor)
            row = {"step": done, "loss": sum(window) / len(window), "lr": cfg.lr * factor,
                   "elapsed_s": round(now() - t0, 3)}  # fmt: skip
            window.clear()
            for name, values in phase_window.items():
                row[f"loss_{name}"] = sum(values) / len(values)
                values.clear()
        out_of_time = cfg.time_limit_s is not None and now() - t0 > cfg.time_limit_s
        if eval_fn is not None and ((cfg.eval_every and done % cfg.eval_every == 0) or done == cfg.steps or out_of_time):
            metrics = evaluate(model, eval_fn)
            row = {"step": done, **row, **metrics}
            result.final = metrics
            bar.set_postfix({k: f"{v:.4g}" for k, v in metrics.items() if isinstance(v, float)}, refresh=False)
        if row:
            result.history.append(row)
            if ctx is not None and d.main:
                ctx.log(**row)
        if cfg.ckpt_every and done % cfg.ckpt_every == 0 and done < cfg.steps and d.main and ckpt_dir is not None:
            if not all(torch.isfinite(p).all() for p in model.parameters()):
                raise NonFiniteLoss(f"parameters became non-finite at step {done}; last good checkpoint kept")
            save_checkpoint(ckpt_dir, done, model, opt, gen, result.history, meta)
        bar.set_description(f"{desc} loss {window[-1] if window else row.get('loss', 0):.4f}", refresh=False)
        bar.update(1)
        if (sig := _stop_signal(d)) is not None:
            bar.close()
            raise _interrupt(sig, done, cfg, d, ckpt_dir, model, opt, gen, result.history, meta)
        if out_of_time:
            result.stopped_early = True
            break
    bar.close()
    result.steps = done
    result.elapsed_s = now() - t0
    if eval_fn is not None and not result.final:
        result.final = evaluate(model, eval_fn)
    return result


def _run_meta(cfg: TrainConfig, ctx: RunContext | None, batch_fn, data_seed: int) -> dict:
    """What a checkpoint must match on resume: the run's resolved config, this fit's TrainConfig, and the data."""
    config = {"fit": to_dict(cfg)}
    if ctx is not None and getattr(ctx, "config", None) is not None:
        config["run"] = ctx.config
    return json.loads(json.dumps({"config": config, "data": data_fingerprint(batch_fn, data_seed)}, default=str))


def _stop_signal(d: Dist) -> int | None:
    """The signal that asked to stop (SIGINT/SIGTERM), agreed by every rank, or None."""
    sig = signals.requested()
    if d.world > 1:
        import torch.distributed as dist

        flag = torch.tensor(float(sig or 0))
        dist.all_reduce(flag, op=dist.ReduceOp.MAX)
        sig = int(flag.item()) or None
    return sig


def _interrupt(sig: int, done: int, cfg: TrainConfig, d: Dist, ckpt_dir: Path | None, model, opt, gen, history,
               meta) -> Interrupted:  # fmt: skip
    """Write a final checkpoint (where the run checkpoints) and return the Interrupted to raise."""
    path = None
    if cfg.ckpt_every and ckpt_dir is not None:
        if d.main:
            last = _pointer_name(ckpt_dir)
            path = ckpt_dir / last if last == f"step-{done:07d}" else save_checkpoint(ckpt_dir, done, model, opt, gen,
                                                                                      history, meta)  # fmt: skip
        else:
            path = ckpt_dir / f"step-{done:07d}"
    return Interrupted(sig, done, path)


@torch.no_grad()
def evaluate(model: nn.Module, eval_fn: Callable[[nn.Module], dict[str, float]]) -> dict[str, float]:
    """Run `eval_fn` in eval mode without gradients, then restore train mode."""
    was_training = model.training
    model.eval()
    try:
        return {k: float(v) if isinstance(v, int | float | Tensor) else v for k, v in eval_fn(model).items()}
    finally:
        model.train(was_training)

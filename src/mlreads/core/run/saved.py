"""Trained models kept in a run folder and rebuilt from it: `RunContext.save_model` writes them, `load_run` reads them.

    RUN_DIR/models/<arm>.safetensors   the weights: the model's state_dict (tied tensors stored once)
    RUN_DIR/models/<arm>.json          what rebuilds it: {"format": "mlreads-model/1", "arm": "gpt", "class":
                                       "gpt.GPT", "config": {...}, "dtype": "float32", "channels_last": false,
                                       "params": 812544, "meta": {...}}

An arm is one trained model of a run ("gpt"; "2-layer" and "1-layer"; one per optimiser or objective). A model is
rebuilt from its frozen config dataclass and its weights, never unpickled. "class" is `<package>.<ClassName>` and must
name an entry of that package's `LOADABLE`, the explicit list of model classes a run may save, declared in
`mlreads/<package>/__init__.py`; the package must be on the reading list (core/papers.py). So nothing a JSON file
names is imported unless it is one of ours, and a class no package declares cannot be saved in the first place.

A run folder is input: everything is checked before a model is used. The JSON must have its keys with the right
types, the config every field of its dataclass with a value of the field's type (a field it lacks takes its default),
the safetensors file a valid header (parsed by safetensors, which refuses a pickle in its place), and every tensor the
shape and dtype of the rebuilt model's; the model is first built on the meta device, so a tampered config that asks
for a huge model is refused before anything is allocated. A failure is one `SavedModelError` line naming the file.

`meta` is what a reader needs beside the weights, kept as JSON by the experiment that saved the model:
    tokens, joiner      a language model's vocabulary in id order, and "" (characters) or " " (words) to join them
    src_tokens, tgt_tokens   a translation model's vocabularies
    image_side, pixel_range  an image model's side (28) and its pixels' range ([0, 1] or [-1, 1])
    T, betas, param     a diffusion model's schedule (T steps of `betas`, "linear") and what it predicts ("eps", "mu")
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import types
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import torch
from torch import Tensor, nn

from mlreads.core.errors import UserError, WriteFailed

FORMAT = "mlreads-model/1"
MODELS = "models"  # the folder under the run folder
ARM = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
MAX_JSON_BYTES = 16 * 2**20
DTYPES = {"float32": torch.float32, "float64": torch.float64, "float16": torch.float16, "bfloat16": torch.bfloat16}
_ST_DTYPES = {torch.float32: "F32", torch.float64: "F64", torch.float16: "F16", torch.bfloat16: "BF16",
              torch.int64: "I64", torch.int32: "I32", torch.int16: "I16", torch.int8: "I8", torch.uint8: "U8",
              torch.bool: "BOOL"}  # fmt: skip
_FIX = "rerun the experiment to save it again"


class SavedModelError(UserError, ValueError):
    """A saved model cannot be rebuilt: a missing or damaged file, an unknown class, a config or tensor that does not
    fit. The message names the file, in one line."""


@dataclass(frozen=True)
class Loadable:
    """A model class a run may save, with its frozen config dataclass. The model keeps its config as `model.cfg`; it
    is rebuilt as `model(config)`, or as `model(**config's fields)` with `kwargs` (a class whose constructor takes its
    sizes as arguments)."""

    model: type[nn.Module]
    config: type
    kwargs: bool = False

    def build(self, cfg: Any) -> nn.Module:
        if self.kwargs:
            return self.model(**{f.name: getattr(cfg, f.name) for f in dataclasses.fields(cfg)})
        return self.model(cfg)


@dataclass(frozen=True)
class SavedModel:
    """One arm of a run, rebuilt: the model (in eval mode), its class name, its config and the experiment's meta."""

    arm: str
    model: nn.Module
    cls: str  # "<package>.<ClassName>", e.g. "gpt.GPT"
    config: Any
    meta: dict

    def decode(self, ids: Tensor | list[int]) -> str:
        """Token ids -> text, with the saved vocabulary (`meta["tokens"]`, joined by `meta["joiner"]`)."""
        tokens, joiner = self._vocab()
        ids = ids.reshape(-1).tolist() if isinstance(ids, Tensor) else list(ids)
        return joiner.join(tokens[i] for i in ids)

    def encode(self, text: str) -> Tensor:
        """Text -> token ids (L,): characters, or words and punctuation marks as the word tokenizer splits them
        (core/data/text.py); an unknown one raises UserError."""
        from mlreads.core.data.text import WORD

        tokens, joiner = self._vocab()
        index = {t: i for i, t in enumerate(tokens)}
        pieces = list(text) if joiner == "" else WORD.findall(text)
        unknown = [p for p in pieces if p not in index]
        if unknown:
            raise UserError(f"{unknown[0]!r} is not in the vocabulary of arm {self.arm!r} ({len(tokens)} tokens)")
        return torch.tensor([index[p] for p in pieces], dtype=torch.long)

    def _vocab(self) -> tuple[list[str], str]:
        tokens, joiner = self.meta.get("tokens"), self.meta.get("joiner", "")
        if not (isinstance(tokens, list) and all(isinstance(t, str) for t in tokens) and isinstance(joiner, str)):
            raise UserError(f"arm {self.arm!r} ({self.cls}) kept no vocabulary: it is not a language model")
        return tokens, joiner


# ---------------------------------------------------------------------------------------------- the registry


def class_name(cls: type) -> str:
    """`<package>.<ClassName>` of a class defined in a paper package (mlreads.gpt.model.GPT -> "gpt.GPT")."""
    parts = cls.__module__.split(".")
    return f"{parts[1] if len(parts) > 1 and parts[0] == 'mlreads' else cls.__module__}.{cls.__name__}"


def loadable(name: str) -> Loadable | None:
    """The `LOADABLE` entry that `name` ("gpt.GPT") names, or None: only packages on the reading list are imported."""
    import importlib

    from mlreads.core.papers import PACKAGES

    package, _, cls = name.partition(".")
    if package not in PACKAGES or not cls:
        return None
    for entry in getattr(importlib.import_module(f"mlreads.{package}"), "LOADABLE", ()):
        if entry.model.__name__ == cls:
            return entry
    return None


def known_classes() -> list[str]:
    """Every loadable class name, for error messages and the docs."""
    import importlib

    from mlreads.core.papers import PACKAGES

    return [f"{p}.{e.model.__name__}" for p in PACKAGES for e in getattr(importlib.import_module(f"mlreads.{p}"),
                                                                         "LOADABLE", ())]  # fmt: skip


# ---------------------------------------------------------------------------------------------- saving


def save_model(run_dir: Path, arm: str, model: nn.Module, meta: dict | None = None) -> Path | None:
    """Write `models/<arm>.safetensors` and `models/<arm>.json` under `run_dir` (each atomically, weights first), and
    return the JSON's path; None on a DDP rank other than 0, which leaves saving to rank 0.

    A programming error (an arm name that is not a plain file name, a class no package lists in `LOADABLE`, a model
    without its `cfg`, meta that is not JSON) raises TypeError or ValueError; a failed write raises WriteFailed."""
    from safetensors.torch import save_model as st_save

    if torch.distributed.is_available() and torch.distributed.is_initialized() and torch.distributed.get_rank() != 0:
        return None
    if isinstance(model, nn.parallel.DistributedDataParallel):
        model = model.module
    if not isinstance(arm, str) or not ARM.fullmatch(arm):
        raise ValueError(f"save_model: arm {arm!r} must be a plain name (letters, digits, '.', '_', '-')")
    name = class_name(type(model))
    entry = loadable(name)
    if entry is None or entry.model is not type(model):
        raise TypeError(f"save_model: {name} is not in its package's LOADABLE, so it could not be loaded back")
    cfg = getattr(model, "cfg", None)
    if type(cfg) is not entry.config:
        raise TypeError(f"save_model: {name}.cfg is {type(cfg).__name__}, not its config {entry.config.__name__}")
    floats = [p.dtype for p in model.parameters() if p.is_floating_point()]
    # conv weights kept in channels_last (resnet/degradation) are restored so: the same layout runs the same kernels
    channels_last = any(p.dim() == 4 and not p.is_contiguous() and p.is_contiguous(memory_format=torch.channels_last)
                        for p in model.parameters())  # fmt: skip
    spec = {
        "format": FORMAT,
        "arm": arm,
        "class": name,
        "config": dataclasses.asdict(cfg),
        "dtype": next((k for k, v in DTYPES.items() if floats and v == floats[0]), "float32"),
        "channels_last": channels_last,
        "params": sum(p.numel() for p in model.parameters()),
        "meta": json.loads(json.dumps(meta or {}, allow_nan=False)),  # JSON values only (TypeError otherwise)
    }
    folder = Path(run_dir) / MODELS
    weights, card = folder / f"{arm}.safetensors", folder / f"{arm}.json"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        st_save(model, str(weights.with_suffix(".safetensors.tmp")), force_contiguous=True)
        os.replace(weights.with_suffix(".safetensors.tmp"), weights)
        card.with_suffix(".json.tmp").write_text(json.dumps(spec, indent=1))
        os.replace(card.with_suffix(".json.tmp"), card)
    except OSError as e:
        raise WriteFailed(f"cannot save model {arm!r} in {folder} ({e.strerror or e})") from None
    return card


def clear_models(run_dir: Path) -> None:
    """Remove the saved models of an earlier run in this folder (a new run saves its own; a stale arm would mix)."""
    folder = Path(run_dir) / MODELS
    if folder.is_dir() and not folder.is_symlink():
        for p in folder.iterdir():
            if p.suffix in (".json", ".safetensors", ".tmp") and (p.is_symlink() or p.is_file()):
                p.unlink()


# ---------------------------------------------------------------------------------------------- loading


def saved_arms(run_dir: str | Path) -> list[str]:
    """The arms saved in `run_dir` (sorted), from the names of their JSON files; SavedModelError when there are none."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise SavedModelError(f"{run_dir}: no such run folder (one `mlreads run` wrote: runs/<id>/<budget>-s<seed>)")
    folder = run_dir / MODELS
    arms = sorted(p.stem for p in folder.glob("*.json")) if folder.is_dir() and not folder.is_symlink() else []
    if not arms:
        raise SavedModelError(f"{run_dir}: no saved models ({MODELS}/ holds none): the experiment trains no model, or "
                              f"the run is older than saved models; {_FIX}")  # fmt: skip
    return arms


def load_saved(run_dir: str | Path, arm: str | None = None) -> dict[str, SavedModel]:
    """Every saved arm of `run_dir` (or only `arm`), rebuilt and in eval mode: {arm: SavedModel}. Any problem is one
    SavedModelError line naming the file."""
    arms = saved_arms(run_dir)
    if arm is not None:
        if arm not in arms:
            raise SavedModelError(f"{run_dir}: no saved arm {arm!r}; it has {', '.join(arms)}")
        arms = [arm]
    return {a: _load_arm(Path(run_dir) / MODELS, a) for a in arms}


def load_run(run_dir: str | Path, arm: str | None = None) -> dict[str, nn.Module]:
    """The trained models of a run folder: {arm: model}, each rebuilt from its saved config and weights and in eval
    mode, ready for `model.run_with_cache(x)`. `arm` loads one. `load_saved` also returns each arm's config and meta
    (a language model's vocabulary, for instance)."""
    return {a: s.model for a, s in load_saved(run_dir, arm).items()}


def _load_arm(folder: Path, arm: str) -> SavedModel:
    card, weights = folder / f"{arm}.json", folder / f"{arm}.safetensors"
    spec = _read_card(card, arm)
    entry = loadable(spec["class"])
    if entry is None:
        raise SavedModelError(f"{card}: names the model class {spec['class']!r}, which is not a loadable mlreads model "
                              f"(known: {', '.join(known_classes())}); {_FIX}")  # fmt: skip
    cfg = _config(entry.config, spec["config"], f"{card}: config")
    header = _header(weights)
    dtype = DTYPES[spec["dtype"]]
    model = _build(entry, cfg, dtype, header, card, weights)
    _load_weights(model, weights, header)
    if spec["channels_last"]:
        model = model.to(memory_format=torch.channels_last)
    return SavedModel(arm, model.eval(), spec["class"], cfg, spec["meta"])


def _brief(err: Exception) -> str:
    return " ".join(str(err).split())[:120] or type(err).__name__


def _regular(path: Path) -> None:
    if path.is_symlink() or not path.is_file():
        raise SavedModelError(f"{path}: missing or not a regular file; {_FIX}")


def _read_card(path: Path, arm: str) -> dict:
    _regular(path)
    if path.stat().st_size > MAX_JSON_BYTES:
        raise SavedModelError(f"{path}: {path.stat().st_size} bytes, too large for a model card; {_FIX}")
    try:
        spec = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise SavedModelError(f"{path}: not valid JSON; {_FIX}") from None
    want = {"format": str, "arm": str, "class": str, "config": dict, "dtype": str, "channels_last": bool, "meta": dict}
    if not isinstance(spec, dict):
        raise SavedModelError(f"{path}: not a JSON object; {_FIX}")
    for key, tp in want.items():
        if not isinstance(spec.get(key), tp):
            raise SavedModelError(f"{path}: {key!r} is missing or not a {tp.__name__}; {_FIX}")
    if spec["format"] != FORMAT:
        raise SavedModelError(f"{path}: format {spec['format'][:40]!r}, this mlreads reads {FORMAT!r}; {_FIX}")
    if spec["arm"] != arm:
        raise SavedModelError(f"{path}: says it is arm {spec['arm'][:40]!r}, its file name says {arm!r}; {_FIX}")
    if spec["dtype"] not in DTYPES:
        raise SavedModelError(f"{path}: dtype {spec['dtype'][:20]!r} is not one of {', '.join(DTYPES)}; {_FIX}")
    return spec


def _config(cls: type, data: Any, where: str) -> Any:
    """`cls` (a frozen dataclass) from its JSON: each field's value checked against the field's annotation, a missing
    field left at its default, an unknown one refused; `__post_init__` rules apply."""
    if not isinstance(data, dict):
        raise SavedModelError(f"{where}: expected an object for {cls.__name__}; {_FIX}")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls) if f.init}
    extra = sorted(set(data) - names)
    if extra:
        raise SavedModelError(f"{where}: {cls.__name__} has no field {extra[0][:40]!r}; {_FIX}")
    values = {k: _value(v, hints[k], f"{where}.{k}") for k, v in data.items()}
    try:
        return cls(**values)
    except (ValueError, TypeError, AssertionError) as e:
        raise SavedModelError(f"{where}: {cls.__name__} refuses it ({_brief(e)}); {_FIX}") from None


def _value(value: Any, tp: Any, where: str) -> Any:
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if dataclasses.is_dataclass(tp):
        return _config(tp, value, where)
    if origin in (typing.Union, types.UnionType):
        for arg in args:
            try:
                return _value(value, arg, where)
            except SavedModelError:
                continue
    elif origin is Literal:
        if any(value == a and type(value) is type(a) for a in args):
            return value
    elif origin is tuple and isinstance(value, list):
        items = args[:1] * len(value) if len(args) == 2 and args[1] is Ellipsis else args
        if len(items) == len(value):
            return tuple(_value(v, t, f"{where}[{i}]") for i, (v, t) in enumerate(zip(value, items)))
    elif tp is type(None):
        if value is None:
            return None
    elif tp is float:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
    elif tp in (int, bool, str) and type(value) is tp:
        return value
    shown = json.dumps(value)[:40]
    raise SavedModelError(f"{where}={shown} is not a {getattr(tp, '__name__', str(tp).replace('typing.', ''))}; {_FIX}")


def _header(path: Path) -> dict[str, tuple[str, tuple[int, ...]]]:
    """{tensor name: (safetensors dtype, shape)}, read by safetensors, which validates the header and the offsets."""
    from safetensors import safe_open

    _regular(path)
    try:
        with safe_open(str(path), framework="pt") as f:
            return {k: (f.get_slice(k).get_dtype(), tuple(f.get_slice(k).get_shape())) for k in f.keys()}  # noqa: SIM118
    except Exception as e:  # noqa: BLE001  (safetensors raises its own SafetensorError, or OSError)
        raise SavedModelError(f"{path}: not a valid safetensors file ({_brief(e)}); {_FIX}") from None


def _build(entry: Loadable, cfg: Any, dtype: torch.dtype, header: dict, card: Path, weights: Path) -> nn.Module:
    """The model from its config, checked against the weights' header first on the meta device (nothing allocated),
    then for real. The real build draws its random init from a forked RNG, leaving the caller's global RNG as it was."""
    what = f"{card}: cannot build {entry.model.__name__} from its config"
    try:
        with torch.device("meta"):
            probe = entry.build(cfg)
        _match(probe.to(dtype).state_dict(), header, weights, tied=False)
    except NotImplementedError:  # a constructor that computes on its tensors (S4's HiPPO matrices): no meta build
        pass
    except SavedModelError:
        raise
    except Exception as e:  # noqa: BLE001  (any constructor error on a config that passed its types)
        raise SavedModelError(f"{what} ({type(e).__name__}: {_brief(e)}); {_FIX}") from None
    try:
        with torch.random.fork_rng(devices=[]):
            model = entry.build(cfg).to(dtype)
    except Exception as e:  # noqa: BLE001  (out of memory included: a config the meta build could not check)
        raise SavedModelError(f"{what} ({type(e).__name__}: {_brief(e)}); {_FIX}") from None
    _match(model.state_dict(), header, weights, tied=True)
    return model


def _match(state: dict[str, Tensor], header: dict, path: Path, tied: bool) -> None:
    """Every tensor of the file is one of the model's, with its shape and dtype; with `tied`, every tensor of the
    model is in the file or shares its storage with one that is (tied embeddings are stored once)."""
    for key, (dtype, shape) in header.items():
        if key not in state:
            raise SavedModelError(f"{path}: holds {key[:60]!r}, which the model built from its config does not have; "
                                  f"{_FIX}")  # fmt: skip
        want = (_ST_DTYPES.get(state[key].dtype), tuple(state[key].shape))
        if (dtype, shape) != want:
            raise SavedModelError(f"{path}: {key[:60]!r} is {dtype} {list(shape)}, the model built from its config "
                                  f"needs {want[0]} {list(want[1])}; {_FIX}")  # fmt: skip
    if tied:
        stored = {state[k].data_ptr() for k in header if state[k].numel()}
        for key, t in state.items():
            if key not in header and not (t.numel() and t.data_ptr() in stored):
                raise SavedModelError(f"{path}: has no tensor {key[:60]!r} for the model built from its config; {_FIX}")


def _load_weights(model: nn.Module, path: Path, header: dict) -> None:
    from safetensors.torch import load_file

    try:
        tensors = load_file(str(path))
    except Exception as e:  # noqa: BLE001
        raise SavedModelError(f"{path}: cannot read the weights ({_brief(e)}); {_FIX}") from None
    with torch.no_grad():
        model.load_state_dict(tensors, strict=False)  # the keys were matched above; tied ones arrive through their twin

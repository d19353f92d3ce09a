"""What the circuits experiments draw besides corpus windows: Olsson et al.'s repeated random sequences and the
corpus's bigram counts. Corpus windows themselves come from `mlreads.core.data.text` (`TextConfig(tokens="word")`,
`load_text`, `TextDataset.get_batch`).

Olsson et al. 2022 (arXiv:2209.11895) measure induction on a random token sequence repeated twice
(`repeated_batch`, built on `mlreads.core.data.synthetic.repeated_random_tokens`); Elhage et al. 2021 compare a
0-layer model with the corpus's bigram statistics (`bigram_counts`).

Deviations: training rows with a varying period and filler (`varied_repeated_batch`, see its docstring).
"""

from __future__ import annotations

import torch
from torch import Tensor

from mlreads.core.data.synthetic import repeated_random_tokens


def repeated_batch(batch: int, half: int, vocab: int, gen: torch.Generator) -> Tensor:
    """(B, 2 * half + 1): a random sequence of `half` tokens repeated twice, plus one more token of the third
    repeat, so inputs [:, :-1] are the two repeats and every target is defined. The fixed probe of Olsson et al."""
    return repeated_random_tokens(batch, half, vocab, gen, n_repeats=3)[:, : 2 * half + 1]


def varied_repeated_batch(batch: int, half: int, vocab: int, gen: torch.Generator) -> Tensor:
    """(B, 2 * half + 1) training rows: f random filler tokens, then a random sequence of m tokens repeated to the
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
    """(V, V) counts of (current, next) pairs in a token stream ids (L,)."""
    return torch.bincount(ids[:-1] * vocab + ids[1:], minlength=vocab * vocab).reshape(vocab, vocab).double()

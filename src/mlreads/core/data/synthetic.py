"""Synthetic sequence tasks, generated on the fly and seeded only through a ``torch.Generator``.

- ``repeated_random_tokens``: a random sequence repeated (induction-head probes; Olsson et al. 2022).
- ``selective_copying``: Mamba (Gu & Dao 2023, arXiv 2312.00752), Section 4.1 and Table 1; the task of
  Jing et al. / H3 (Fu et al. 2023). Noise tokens everywhere except ``n_memorize`` data tokens at random positions;
  after them come ``n_memorize`` marker tokens, at which the model must emit the data tokens in order.
- ``induction_heads``: the H3 / safari associative-recall probe used in Mamba Table 2: random tokens, one special
  token followed by the token to recall somewhere in the sequence, the special token again at the end; the answer is
  the recalled token.

Token conventions (our own code; formats follow the papers' descriptions):
- selective copying: token 0 is noise/blank, token ``vocab - 1`` is the marker ("copy now"), data tokens are drawn
  from ``1 .. vocab - 2``; the vocabulary size includes noise and marker.
- induction heads: token ``vocab - 1`` is the special token, other tokens are drawn from ``0 .. vocab - 2``.

Deviations: the safari generator draws a fixed data set up front; we sample fresh batches from the generator.
"""

from __future__ import annotations

import torch
from torch import Tensor


def repeated_random_tokens(
    batch: int, seq_len: int, vocab: int, gen: torch.Generator, n_repeats: int = 2
) -> Tensor:
    """A uniform random sequence of ``seq_len`` tokens, repeated ``n_repeats`` times: (batch, seq_len * n_repeats)."""
    seq = torch.randint(0, vocab, (batch, seq_len), generator=gen)  # (B, L)
    return seq.repeat(1, n_repeats)  # (B, L * n_repeats)


def selective_copying(
    batch: int,
    seq_len: int,
    n_memorize: int = 16,
    vocab: int = 16,
    gen: torch.Generator | None = None,
) -> tuple[Tensor, Tensor, Tensor]:
    """Selective copying (Mamba Table 1).

    Returns ``(inputs, targets, mask)``, each (batch, seq_len + n_memorize):
    - ``inputs``: noise token 0 everywhere in the first ``seq_len`` positions except ``n_memorize`` data tokens
      (values 1..vocab-2) at random sorted positions, then ``n_memorize`` marker tokens (``vocab - 1``);
    - ``targets``: the data tokens in order at the marker positions, -100 elsewhere;
    - ``mask``: True at the marker positions (where the loss and accuracy are taken).
    The model reads position t and predicts ``targets[:, t]`` (no shift).
    """
    if gen is None:
        raise ValueError("selective_copying needs an explicit torch.Generator (gen=...)")
    if vocab < 3:
        raise ValueError("vocab must be >= 3 (noise, marker and at least one data token)")
    if n_memorize > seq_len:
        raise ValueError(f"n_memorize={n_memorize} must be <= seq_len={seq_len}")
    noise, marker = 0, vocab - 1
    total = seq_len + n_memorize
    data = torch.randint(1, vocab - 1, (batch, n_memorize), generator=gen)  # (B, M)
    pos = torch.rand(batch, seq_len, generator=gen).argsort(dim=-1)[:, :n_memorize]
    pos = pos.sort(dim=-1).values  # (B, M), increasing, so the order of data tokens is their order in the input
    inputs = torch.full((batch, total), noise, dtype=torch.long)
    inputs.scatter_(1, pos, data)
    inputs[:, seq_len:] = marker
    targets = torch.full((batch, total), -100, dtype=torch.long)
    targets[:, seq_len:] = data
    mask = torch.zeros(batch, total, dtype=torch.bool)
    mask[:, seq_len:] = True
    return inputs, targets, mask


def induction_heads(
    batch: int, seq_len: int, vocab: int = 16, gen: torch.Generator | None = None, distance: int | None = None
) -> tuple[Tensor, Tensor]:
    """Induction heads / associative recall in the H3 (safari) format (Mamba Table 2).

    Returns ``(x, answer)``: ``x`` (batch, seq_len) holds random tokens from ``0..vocab-2``; the special token
    ``vocab - 1`` appears at a random position p in ``[0, seq_len - 3]`` followed by the token to recall at p + 1,
    and again at the last position. ``answer`` (batch,) is the recalled token, to be predicted from the last
    position's output. The special token appears nowhere else. ``distance`` fixes p = seq_len - 1 - distance (the
    number of steps from the first special token to the query; 2 <= distance <= seq_len - 1), for retention probes.
    """
    if gen is None:
        raise ValueError("induction_heads needs an explicit torch.Generator (gen=...)")
    if seq_len < 3:
        raise ValueError("seq_len must be >= 3")
    if vocab < 2:
        raise ValueError("vocab must be >= 2")
    special = vocab - 1
    x = torch.randint(0, vocab - 1, (batch, seq_len), generator=gen)  # (B, L)
    if distance is None:
        p = torch.randint(0, seq_len - 2, (batch,), generator=gen)  # (B,)
    elif 2 <= distance <= seq_len - 1:
        p = torch.full((batch,), seq_len - 1 - distance)
    else:
        raise ValueError(f"distance must be in [2, seq_len - 1] = [2, {seq_len - 1}], got {distance}")
    rows = torch.arange(batch)
    x[rows, p] = special
    answer = x[rows, p + 1].clone()  # (B,), a non-special token by construction
    x[:, -1] = special
    return x, answer

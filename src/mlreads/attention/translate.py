"""Training and evaluating translation models, shared by the RNNsearch and the Transformer experiments: batches,
length-binned test sets, greedy translation, BLEU (sacrebleu, never a home-made BLEU) and alignment accuracy.

A model here is any module with `forward(src, tgt_in)` (logits, or (logits, alignments)) and
`greedy(src, max_len)` (ids, or (ids, alignments)).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import Tensor, nn

from mlreads.core.data.translation import EOS, PAD, Pair, ParallelText, SyntheticTranslation, TranslationConfig, \
    pad_batch

Task = SyntheticTranslation | ParallelText


def make_task(cfg: TranslationConfig) -> Task:
    return ParallelText(cfg.path) if cfg.path else SyntheticTranslation(cfg)


def batch_fn(task: Task, batch_size: int, min_len: int, max_len: int) -> Callable[[int, torch.Generator], tuple]:
    """`fit`'s batch_fn: fresh sentence pairs every step, drawn from fit's generator."""
    return lambda step, gen: pad_batch(task.sample(batch_size, gen, min_len, max_len))


def length_bins(edges: Sequence[int]) -> list[tuple[int, int]]:
    """(5, 10, 20) -> [(5, 10), (11, 20)]: inclusive source-length bins from increasing edges."""
    if len(edges) < 2 or any(b <= a for a, b in zip(edges, edges[1:])):
        raise ValueError(f"bin_edges={tuple(edges)}: give at least two increasing lengths")
    return [(edges[0], edges[1])] + [(a + 1, b) for a, b in zip(edges[1:], edges[2:])]


def test_bins(task: Task, bins: Sequence[tuple[int, int]], n_per_bin: int, gen: torch.Generator) -> dict[str, list[Pair]]:
    """Held-out pairs per source-length bin ("21-30": pairs with 21 <= length <= 30). For user data, the held-out
    pairs are sorted into the bins."""
    if isinstance(task, ParallelText):
        return {f"{lo}-{hi}": [p for p in task.test if lo <= len(p.src) <= hi] for lo, hi in bins}
    return {f"{lo}-{hi}": task.sample(n_per_bin, gen, lo, hi) for lo, hi in bins}


def _first(x):
    return x[0] if isinstance(x, tuple) else x


@torch.no_grad()
def translate(model: nn.Module, pairs: Sequence[Pair], batch_size: int = 100, extra: int = 10) -> list[list[int]]:
    """Greedy translations (ids up to, without, EOS), in batches of similar length."""
    was = model.training
    model.eval()
    order = sorted(range(len(pairs)), key=lambda i: len(pairs[i].src))
    out: list[list[int]] = [[] for _ in pairs]
    for k in range(0, len(order), batch_size):
        idx = order[k : k + batch_size]
        src = pad_batch([pairs[i] for i in idx])[0]
        ids = _first(model.greedy(src, src.shape[1] + extra))
        for i, row in zip(idx, ids.tolist()):
            out[i] = row[: row.index(EOS)] if EOS in row else [t for t in row if t != PAD]
    model.train(was)
    return out


def bleu(task: Task, hyps: Sequence[Sequence[int]], pairs: Sequence[Pair]) -> float:
    """Corpus BLEU-4 (sacrebleu, tokenize="none": our tokens are already words)."""
    import sacrebleu

    if not pairs:
        return float("nan")
    refs = [task.decode(p.tgt) for p in pairs]
    return float(sacrebleu.corpus_bleu([task.decode(h) for h in hyps], [refs], tokenize="none", force=True).score)


def bleu_by_bin(model: nn.Module, task: Task, sets: dict[str, list[Pair]]) -> dict[str, float]:
    return {name: bleu(task, translate(model, pairs), pairs) for name, pairs in sets.items()}


@torch.no_grad()
def alignment_accuracy(model: nn.Module, pairs: Sequence[Pair]) -> tuple[float, Tensor]:
    """The share of target words whose strongest attention weight (teacher-forced) falls on the source word they
    translate (Fig 3 as a number), and the alignment matrix of the first pair (T, S) for the figure."""
    was = model.training
    model.eval()
    src, tgt_in, _ = pad_batch(list(pairs))
    _, align = model(src, tgt_in)  # (B, T, S)
    model.train(was)
    hits = total = 0
    for b, p in enumerate(pairs):
        guess = align[b, : len(p.tgt)].argmax(-1).tolist()
        hits += sum(g == a for g, a in zip(guess, p.alignment))
        total += len(p.tgt)
    first = pairs[0]
    return hits / max(1, total), align[0, : len(first.tgt) + 1, : len(first.src) + 1]

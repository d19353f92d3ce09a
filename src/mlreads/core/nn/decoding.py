"""Decoding: beam search for any autoregressive model, one source sentence at a time; greedy translation of a test set
in batches and its corpus BLEU (sacrebleu, never a home-made BLEU).

The model supplies `step(tokens (K,), state) -> (log-probabilities (K, V), state)`; `state` is any nesting of
tuples/lists/dicts of tensors whose dim 0 indexes the K live hypotheses (an RNN state, a KV cache). Scores are summed
log-probabilities; finished hypotheses are ranked by score / length^alpha (alpha = 0: raw log-probability, the form
Bahdanau et al. used; Wu et al. 2016 and Vaswani et al. use a length penalty, alpha 0.6).

A translation model here is any module with `greedy(src, max_len)` returning ids, or (ids, alignments).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import Tensor, nn

from mlreads.core.data.translation import EOS, PAD, Pair, Task, pad_batch


def select(state: Any, index: Tensor) -> Any:
    """Index every tensor of a nested state along dim 0 (reorder/expand hypotheses)."""
    if isinstance(state, Tensor):
        return state.index_select(0, index)
    if isinstance(state, tuple | list):
        return type(state)(select(s, index) for s in state)
    if isinstance(state, dict):
        return {k: select(v, index) for k, v in state.items()}
    return state


@torch.no_grad()
def beam_search(step: Callable[[Tensor, Any], tuple[Tensor, Any]], state: Any, beam: int, max_len: int, bos: int,
                eos: int, alpha: float = 0.0) -> tuple[list[int], float]:
    """The best hypothesis (token ids without BOS, ending at EOS if reached) and its score. `state` is for one
    hypothesis (dim 0 of size 1)."""
    tokens = torch.tensor([bos])
    seqs: list[list[int]] = [[]]
    scores = torch.zeros(1)
    finished: list[tuple[float, list[int]]] = []
    for t in range(max_len):
        logp, state = step(tokens, state)  # (K, V)
        total = (scores[:, None] + logp).reshape(-1)  # (K * V,)
        top = total.topk(min(beam, total.numel()))
        V = logp.shape[1]
        origin, word = top.indices // V, top.indices % V
        new_seqs, keep = [], []
        for i, (o, w, sc) in enumerate(zip(origin.tolist(), word.tolist(), top.values.tolist())):
            seq = seqs[o] + [w]
            if w == eos:
                finished.append((sc / len(seq) ** alpha, seq))
            else:
                new_seqs.append(seq)
                keep.append(i)
        if not keep:
            break
        if finished and alpha == 0 and max(f[0] for f in finished) >= top.values[keep].max().item():
            break  # log-probabilities only fall: no live hypothesis can beat the best finished one
        if len(finished) >= beam and alpha != 0:
            break  # with a length penalty, stop once `beam` hypotheses have finished (the usual heuristic)
        idx = torch.tensor(keep)
        seqs, scores = new_seqs, top.values[idx]
        tokens, state = word[idx], select(state, origin[idx])
    if not finished:
        best = int(scores.argmax())
        return seqs[best], float(scores[best]) / max(1, len(seqs[best])) ** alpha
    score, seq = max(finished, key=lambda f: f[0])
    return seq, score


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


def bleu_stats(task: Task, hyps: Sequence[Sequence[int]], pairs: Sequence[Pair]):
    """Per-sentence BLEU sufficient statistics (n, 10): hypothesis length, reference length, then matches and totals
    of 1- to 4-grams (sacrebleu's, tokenize="none"); summed over any subset of sentences, `bleu_from_stats` gives that
    subset's corpus BLEU, equal to `bleu` on it."""
    import numpy as np
    from sacrebleu.metrics import BLEU

    refs = [task.decode(p.tgt) for p in pairs]
    stats = BLEU(tokenize="none", force=True)._extract_corpus_statistics([task.decode(h) for h in hyps], [refs])
    return np.asarray(stats, dtype=np.int64)


def bleu_from_stats(summed) -> float:
    """Corpus BLEU from summed `bleu_stats` rows (sacrebleu's formula and default smoothing)."""
    from sacrebleu.metrics import BLEU

    return float(BLEU(tokenize="none", force=True)._compute_score_from_stats([int(v) for v in summed]).score)


def paired_bleu(name: str, task: Task, hyps_a: Sequence[Sequence[int]], hyps_b: Sequence[Sequence[int]],
                pairs: Sequence[Pair], n_boot: int = 1000, seed: int = 0) -> dict:  # fmt: skip
    """BLEU(a) - BLEU(b) on the same test sentences, with the paired bootstrap (Koehn 2004): both systems are scored
    on the same resamples of sentences, so the interval holds the test set's noise and not what the two share.
    Returns `core.stats.bootstrap`'s name, name_se, name_ci, name_n."""
    import numpy as np

    from mlreads.core.stats import bootstrap

    both = np.concatenate([bleu_stats(task, hyps_a, pairs), bleu_stats(task, hyps_b, pairs)], axis=1)  # (n, 20)

    def diff(rows):
        total = rows.sum(0)
        return bleu_from_stats(total[:10]) - bleu_from_stats(total[10:])

    return bootstrap(name, both, diff, n_boot=n_boot, seed=seed)

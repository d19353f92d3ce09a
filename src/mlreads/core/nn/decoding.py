"""Beam search for any autoregressive model, one source sentence at a time.

The model supplies `step(tokens (K,), state) -> (log-probabilities (K, V), state)`; `state` is any nesting of
tuples/lists/dicts of tensors whose dim 0 indexes the K live hypotheses (an RNN state, a KV cache). Scores are summed
log-probabilities; finished hypotheses are ranked by score / length^alpha (alpha = 0: raw log-probability, the form
Bahdanau et al. used; Wu et al. 2016 and Vaswani et al. use a length penalty, alpha 0.6).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor


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

"""Head detectors: how much of its attention a head puts where a previous-token, duplicate-token or induction head
would. They read `blocks.{l}.attn.hook_pattern` from `run_with_cache`, so they work on every model in mlreads.

Olsson et al. 2022, "In-context Learning and Induction Heads" (arXiv:2209.11895), section "Definitions / Key
Concepts": an induction head does prefix matching (on [A][B] ... [A] it attends to the [B] after the earlier [A]) and
copying. Its prefix-matching score is measured on a random token sequence repeated twice: the mean attention from each
token of the second repeat to the token after its earlier copy. Elhage et al. 2021 use the same probe.

Each pattern score is the attention mass on a target set of keys, averaged over the queries that have a target:
    previous token:  key i - 1                       duplicate token: keys j < i with tokens[j] == tokens[i]
    induction:       keys j + 1 <= i with j < i and tokens[j] == tokens[i]
A perfect head scores 1; a uniform causal pattern scores about the mean of 1 / (i + 1).

The copying score from the direct path (`ov_copying_accuracy`) asks, for each token the head could attend to, whether
the head's direct logit effect W_E[t] W_OV W_U raises t itself most (top-k among all tokens).

Deviations: none beyond the choice of averaging (equal weight per query with a target).
"""

from __future__ import annotations

import torch
from torch import Tensor

from mlreads.circuits.qk_ov import full_ov_circuit


def previous_token_target(L: int) -> Tensor:
    """-> (L, L) bool: query i targets key i - 1."""
    return torch.ones(L - 1, dtype=torch.bool).diag(-1) if L > 1 else torch.zeros(1, 1, dtype=torch.bool)


def duplicate_token_target(tokens: Tensor) -> Tensor:
    """tokens (..., L) -> (..., L, L) bool: query i targets earlier keys j < i holding the same token."""
    same = tokens[..., :, None] == tokens[..., None, :]  # (..., L, L)
    return same & torch.ones_like(same).tril(-1)


def induction_target(tokens: Tensor) -> Tensor:
    """tokens (..., L) -> (..., L, L) bool: query i targets key j + 1 for each earlier j < i with tokens[j] ==
    tokens[i]."""
    dup = duplicate_token_target(tokens)  # (..., L, L)
    return torch.nn.functional.pad(dup, (1, 0))[..., :-1]  # shift keys right by one: j -> j + 1 <= i


def pattern_score(pattern: Tensor, target: Tensor, query_start: int = 0) -> Tensor:
    """pattern (B, H, L, L) or (H, L, L), target broadcastable to (B, 1, L, L) -> (H,): the mean over queries (with a
    target, at positions >= query_start) and over the batch of the attention mass on the target keys."""
    if pattern.ndim == 3:
        pattern = pattern.unsqueeze(0)
    target = target.to(pattern.dtype)
    while target.ndim < 4:
        target = target.unsqueeze(-3) if target.ndim == 3 else target.unsqueeze(0)
    mass = (pattern * target).sum(-1)  # (B, H, L)
    has = target.sum(-1) > 0  # (B, 1, L)
    has = has.clone()
    has[..., :query_start] = False
    has = has.expand_as(mass)
    return (mass * has).sum((0, 2)) / has.sum((0, 2)).clamp_min(1)


def _patterns(model, tokens: Tensor) -> list[Tensor]:
    _, cache = model.run_with_cache(tokens, names_filter=lambda n: n.endswith("attn.hook_pattern"))
    names = sorted(cache, key=lambda n: int(n.split(".")[1]))
    return [cache[n] for n in names]


def head_scores(model, tokens: Tensor, kind: str, query_start: int = 0) -> Tensor:
    """tokens (B, L) -> (L, H): the score of every head, kind 'previous', 'duplicate' or 'induction'."""
    target = {
        "previous": lambda t: previous_token_target(t.shape[-1]),
        "duplicate": duplicate_token_target,
        "induction": induction_target,
    }[kind](tokens)
    return torch.stack([pattern_score(p, target, query_start) for p in _patterns(model, tokens)])


def repeated_sequence_scores(model, tokens: Tensor) -> dict[str, Tensor]:
    """tokens (B, 2n) -> {"induction", "duplicate", "previous"}: each (L, H). Olsson's probe, a random sequence
    repeated twice: prefix-matching (induction), duplicate and previous-token scores; induction and duplicate are
    taken over the second repeat only."""
    n = tokens.shape[-1] // 2
    pats = _patterns(model, tokens)
    targets = {"induction": induction_target(tokens), "duplicate": duplicate_token_target(tokens)}
    out = {k: torch.stack([pattern_score(p, t, n) for p in pats]) for k, t in targets.items()}
    out["previous"] = torch.stack([pattern_score(p, previous_token_target(tokens.shape[-1])) for p in pats])
    return out


def ov_copying_accuracy(model, k: int = 1) -> Tensor:
    """-> (L, H): the fraction of tokens t whose own logit is among the top k of the head's direct effect
    W_E[t] W_OV W_U."""
    out = []
    for layer in range(model.cfg.n_layers):
        M = full_ov_circuit(model, layer).AB  # (H, V, V): formed once per layer, V x V is small here
        top = M.topk(k, dim=-1).indices  # (H, V, k)
        own = torch.arange(M.shape[-1], device=M.device)[None, :, None]
        out.append((top == own).any(-1).float().mean(-1))
    return torch.stack(out) if out else model.W_E.new_zeros(0, model.cfg.n_heads)

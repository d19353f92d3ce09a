"""Language-model plumbing shared by every paper that trains on text: the next-token loss and a fixed-window
evaluator. Batches are `(x, y)` pairs of (B, L) token ids with y[:, t] = x[:, t + 1] (`TextDataset.get_batch`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

Batch = tuple[Tensor, Tensor]


def next_token_loss(model: nn.Module, batch: Batch) -> Tensor:
    """Mean cross-entropy of the model's logits (B, L, V) against the next tokens y (B, L), in nats per token."""
    x, y = batch  # (B, L), (B, L)
    logits = model(x)  # (B, L, V)
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))


def fixed_windows(data, split: str, batch_size: int, n_ctx: int, n_batches: int, seed: int) -> list[Batch]:
    """`n_batches` batches of random windows of one split, drawn once from `seed`: the same windows every time."""
    gen = torch.Generator().manual_seed(seed)
    return [data.get_batch(split, batch_size, n_ctx, gen) for _ in range(n_batches)]


def lm_evaluator(
    data,
    batch_size: int,
    n_ctx: int,
    n_batches: int,
    splits: Sequence[str] = ("val",),
    seed: int = 1234,
    loss_fn: Callable[[nn.Module, Batch], Tensor] = next_token_loss,
) -> Callable[[nn.Module], dict[str, float]]:
    """An `eval_fn` for `fit`: the mean `loss_fn` over fixed windows of each split, as `{split}_loss`."""
    windows = {split: fixed_windows(data, split, batch_size, n_ctx, n_batches, seed) for split in splits}

    @torch.no_grad()
    def eval_fn(model: nn.Module) -> dict[str, float]:
        return {f"{split}_loss": float(torch.stack([loss_fn(model, b) for b in batches]).mean())
                for split, batches in windows.items()}  # fmt: skip

    return eval_fn

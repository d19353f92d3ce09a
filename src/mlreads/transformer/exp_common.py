"""What the Transformer experiments share: building a model for a translation task, its training recipe (Eq. 3,
Adam (0.9, 0.98, 1e-9), label smoothing), and the teacher-forced dev metrics (perplexity, token accuracy)."""

from __future__ import annotations

import math
from functools import partial

import torch
import torch.nn.functional as F

from mlreads.attention import seq2seq_loss
from mlreads.core.data.translation import PAD, Pair, Task, batch_fn, pad_batch
from mlreads.core.run.runner import RunContext
from mlreads.core.run.seeding import init_rng
from mlreads.core.train import TrainConfig, TrainResult, fit
from mlreads.transformer.model import EncoderDecoder, TransformerConfig, noam_peak_lr


def build(task: Task, ctx: RunContext, name: str, **model) -> EncoderDecoder:
    with init_rng(ctx.seed_for(f"init/{name}")):
        return EncoderDecoder(TransformerConfig(src_vocab=task.src_vocab, tgt_vocab=task.tgt_vocab, **model))


# The peak learning rate the paper's base model trained at: Eq. 3 with d_model = 512 and warmup_steps = 4000
# (7.0e-4). Eq. 3 at a small d_model and a warmup scaled to a short run peaks far higher (d_model 64 and 200 steps:
# 8.8e-3, 12.6x), where post-LN training can stall on its plateau (transformer/ablations' notes).
PAPER_PEAK_LR = noam_peak_lr(512, 4000)


def paper_recipe(steps: int, d_model: int, warmup: int, peak_lr: float | None = None, **kw) -> TrainConfig:
    """Section 5.3: Adam β = (0.9, 0.98), ε = 1e-9, the learning rate of Eq. 3 (linear warmup, then inverse sqrt).
    `peak_lr` keeps Eq. 3's shape with another peak (e.g. PAPER_PEAK_LR); None: Eq. 3 itself at this d_model."""
    return TrainConfig(steps=steps, lr=peak_lr or noam_peak_lr(d_model, warmup), warmup=warmup, schedule="rsqrt",
                       optimizer="adam", betas=(0.9, 0.98), eps=1e-9, grad_clip=None, **kw)  # fmt: skip


def train(model, task: Task, tcfg: TrainConfig, ctx: RunContext, desc: str, batch_size: int, min_len: int,
          max_len: int, label_smoothing: float = 0.0, eval_fn=None, batches=None) -> TrainResult:
    """fit() with the paper's loss; `batches` (a fit batch_fn, e.g. over a fixed corpus) replaces fresh pairs."""
    return fit(model, tcfg, batches or batch_fn(task, batch_size, min_len, max_len),
               partial(seq2seq_loss, label_smoothing=label_smoothing), eval_fn=eval_fn, ctx=ctx, desc=desc)


@torch.no_grad()
def sentence_scores(model, pairs: list[Pair], batch_size: int = 100) -> torch.Tensor:
    """Teacher-forced (negative log-likelihood, target tokens, correct next-token predictions) of each held-out pair
    under the unsmoothed model distribution: (n, 3) in float64, rows in the order of `pairs`."""
    was = model.training
    model.eval()
    rows = []
    for k in range(0, len(pairs), batch_size):
        src, tgt_in, tgt_out = pad_batch(pairs[k : k + batch_size])
        logits = model(src, tgt_in)
        logits = logits[0] if isinstance(logits, tuple) else logits  # (B, T, V)
        mask = tgt_out != PAD  # (B, T)
        nll = F.cross_entropy(logits.transpose(1, 2), tgt_out, reduction="none") * mask  # (B, T)
        hits = (logits.argmax(-1) == tgt_out) & mask
        rows.append(torch.stack([nll.sum(1).double(), mask.sum(1).double(), hits.sum(1).double()], 1))  # (B, 3)
    model.train(was)
    return torch.cat(rows)


def teacher_forced(model, pairs: list[Pair], batch_size: int = 100) -> dict[str, float]:
    """Per-token perplexity (of the unsmoothed distribution) and next-token accuracy on held-out pairs."""
    nll, n, hits = sentence_scores(model, pairs, batch_size).sum(0).tolist()
    return {"ppl": math.exp(nll / n), "token_acc": hits / n}

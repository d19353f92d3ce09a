"""Optimiser parameter groups (weight decay on matrices only, per-group learning rates) and the optimiser itself."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import torch
from torch import nn

from mlreads.core.train.config import TrainConfig

if TYPE_CHECKING:
    pass


def param_groups(
    model: nn.Module,
    weight_decay: float,
    no_decay: Callable[[str, nn.Parameter], bool] | None = None,
    own_lr: Callable[[str, nn.Parameter], bool] | None = None,
    lr: float | None = None,
) -> list[dict]:
    """Optimiser parameter groups: weight decay on matrices (ndim >= 2), none on biases, norms and other vectors.

    `no_decay(name, p)` exempts more parameters from decay (Mamba's A_log). `own_lr(name, p)` moves parameters into
    a group of their own at learning rate `lr` with no decay (S4's state-space parameters). Empty groups are dropped.
    """
    decay, rest, special = [], [], []
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        if own_lr is not None and own_lr(name, p):
            special.append(p)
        elif p.ndim >= 2 and not (no_decay is not None and no_decay(name, p)):
            decay.append(p)
        else:
            rest.append(p)
    groups = [{"params": decay, "weight_decay": weight_decay}, {"params": rest, "weight_decay": 0.0}]
    if special:
        if lr is None:
            raise ValueError("param_groups: own_lr needs lr, the learning rate of that group")
        groups.append({"params": special, "weight_decay": 0.0, "lr": lr})
    return [g for g in groups if g["params"]]


OptimizerFactory = Callable[[list[dict]], torch.optim.Optimizer]


def make_optimizer(
    groups: list[dict], cfg: TrainConfig, factory: OptimizerFactory | None = None
) -> torch.optim.Optimizer:
    """`cfg.optimizer` over `groups`, or `factory(groups)` when given: any torch.optim.Optimizer (the project's own
    Adam or SophiaG, torch's Adagrad); each group arrives with its lr and weight_decay filled in from `cfg`."""
    groups = [{"lr": cfg.lr, "weight_decay": cfg.weight_decay, **g} for g in groups]
    for g in groups:
        g["base_lr"] = g["lr"]
    if factory is not None:
        return factory(groups)
    if cfg.optimizer == "adamw":
        return torch.optim.AdamW(groups, lr=cfg.lr, betas=cfg.betas, eps=cfg.eps)
    if cfg.optimizer == "adam":
        return torch.optim.Adam(groups, lr=cfg.lr, betas=cfg.betas, eps=cfg.eps)
    return torch.optim.SGD(groups, lr=cfg.lr, momentum=cfg.betas[0])

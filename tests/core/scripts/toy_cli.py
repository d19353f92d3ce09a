"""Toy experiments for the hardening tests, and `python toy_cli.py ARGS...`: the mlreads CLI with them registered.

`toytest/ckpt` trains a linear layer (or several, one after the other) through `fit` with checkpoints; its config can
sleep per step (for signal tests), make the loss NaN at a step, and read a scale for its batches from a data file (for
the data fingerprint). The environment can make a run NaN (`MLREADS_TOY_NAN_AT`) or send itself SIGINT when it draws
its N-th batch (`MLREADS_TOY_SIGINT_AT`), without changing its config (so the same run folder).
"""

from __future__ import annotations

import os
import signal
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from mlreads.core.run.registry import Experiment, holds, register
from mlreads.core.run.seeding import init_rng
from mlreads.core.train import TrainConfig, fit


@dataclass(frozen=True)
class CkptCfg:
    steps: int = 8
    ckpt_every: int = 2
    width: int = 3
    lr: float = 0.01
    nan_at: int = 0  # 0: never; else the loss is NaN at this step (1-based)
    sleep_s: float = 0.0  # per batch, so a signal lands mid-training
    data_path: str | None = None  # a file holding one number: the scale of the batches
    log_every: int = 1
    models: int = 1  # trained one after the other, each with its own checkpoints (toy, toy-1, ...)


def run(cfg: CkptCfg, ctx) -> dict:
    nan_at = int(os.environ.get("MLREADS_TOY_NAN_AT", cfg.nan_at))  # the same run folder as a good run (tests)
    sigint_at = int(os.environ.get("MLREADS_TOY_SIGINT_AT", 0))
    scale = float(Path(cfg.data_path).read_text()) if cfg.data_path else 1.0
    drawn = [0]

    def batch_fn(step, gen):
        if cfg.sleep_s:
            time.sleep(cfg.sleep_s)
        drawn[0] += 1
        if drawn[0] == sigint_at:  # Ctrl-C while this step trains: the run stops at its end
            os.kill(os.getpid(), signal.SIGINT)
        x = torch.randn(8, 4, generator=gen) * scale
        return x * float("nan") if nan_at and step + 1 == nan_at else x

    tcfg = TrainConfig(steps=cfg.steps, lr=cfg.lr, ckpt_every=cfg.ckpt_every, log_every=cfg.log_every)
    weights = []
    for i in range(cfg.models):
        with init_rng(ctx.seed_for("init/toy" + (f"-{i}" if i else ""))):
            model = nn.Linear(4, cfg.width)
        res = fit(model, tcfg, batch_fn, lambda m, x: (m(x) - 1).square().mean(), ctx=ctx,
                  desc="toy" + (f"-{i}" if i else ""))  # fmt: skip
        weights += torch.cat([p.detach().reshape(-1) for p in model.parameters()]).tolist()
    w = torch.tensor(weights)
    return {"w": w.tolist(), "finite": bool(torch.isfinite(w).all()), "steps": res.steps}


CKPT = Experiment(
    id="toytest/ckpt", paper="Nobody 2026", claim="a checkpointed toy", paper_value="-",
    configs={"smoke": CkptCfg()}, run=run, checks={"smoke": [holds("finite", "weights stay finite")]},
)  # fmt: skip


if __name__ == "__main__":
    from mlreads import cli
    from mlreads.core.run.registry import load_all

    load_all()
    register(CKPT)
    sys.exit(cli.main(sys.argv[1:]))

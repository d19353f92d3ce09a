"""mamba/induction-extrapolation (Table 2): train at 256, test at every power of two with memory flat in L, against
attention with absolute positions; and a retention probe (accuracy against the distance to the recalled token)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import torch

from mlreads.core.data.synthetic import induction_heads
from mlreads.core.memory import peak_rss_growth_mb
from mlreads.core.train import TrainConfig, fit
from mlreads.mamba import analysis
from mlreads.mamba.exp_common import build_mamba, check_curriculum, param_groups, stage, train_config


@dataclass(frozen=True)
class InductionConfig:
    train_len: int = 256
    vocab: int = 16
    d_model: int = 32
    n_layers: int = 2
    d_state: int = 8
    batch_size: int = 32
    # Curriculum: the run is cut into len(curriculum) equal parts, part i trains at length curriculum[i]; it must end
    # at train_len, so the model is never trained on a sequence longer than train_len. () = train_len throughout.
    curriculum: tuple[int, ...] = ()
    test_log2_min: int = 6
    test_log2_max: int = 16
    eval_tokens: int = 2**19  # sequences per test length = clamp(eval_tokens / L, eval_min, eval_max)
    eval_min: int = 8
    eval_max: int = 256
    segment: int = 4096  # long sequences are read in segments of this many tokens (memory flat in L)
    attn_heads: int = 4
    attn_max_log2: int = 11  # attention memory grows as L^2: evaluate it up to 2^attn_max_log2
    retention_n: int = 16  # the retention probe: sequences per distance (powers of two up to 2^test_log2_max)
    train: TrainConfig = field(default_factory=lambda: train_config(1500, 3e-3))

    def __post_init__(self):
        check_curriculum(self.curriculum, self.train_len, "curriculum")
        if any(n > self.train_len for n in self.curriculum):
            raise ValueError(f"curriculum lengths must be <= train_len={self.train_len}, got {self.curriculum}")


def run_induction(cfg: InductionConfig, ctx) -> dict:
    """Train Mamba and an attention baseline (absolute positions) at train_len on induction heads, then test both at
    every power of two; Mamba reads long inputs in segments with its recurrent state, so memory does not grow with L.
    """
    from mlreads.gpt.model import GPT, GPTConfig

    gen = torch.Generator().manual_seed(20_000 + (ctx.seed if ctx else 0))
    val = induction_heads(512, cfg.train_len, cfg.vocab, gen)
    lengths_train = cfg.curriculum or (cfg.train_len,)

    def batch_fn(step, g):
        return induction_heads(cfg.batch_size, lengths_train[stage(step, cfg.train.steps, len(lengths_train))],
                               cfg.vocab, g)

    def eval_fn(m):
        return {"acc": analysis.induction_accuracy(m, *val)}

    models = {
        "mamba": build_mamba(cfg.d_model, cfg.n_layers, cfg.d_state, cfg.vocab),
        "attention": GPT(GPTConfig(d_vocab=cfg.vocab, n_ctx=2**cfg.attn_max_log2, n_layers=cfg.n_layers,
                                   n_heads=cfg.attn_heads, d_model=cfg.d_model, bias=False)),
    }
    out = {}
    for name, model in models.items():
        t0 = time.perf_counter()
        res = fit(model, cfg.train, batch_fn, analysis.induction_loss, eval_fn, ctx=ctx, desc=f"induction/{name}",
                  groups=param_groups(model, cfg.train.weight_decay))
        out[f"train_acc_{name}"] = 100 * res.final["acc"]
        out[f"train_s_{name}"] = time.perf_counter() - t0
        out[f"params_{name}"] = sum(p.numel() for p in model.parameters())
    if ctx is not None:  # the trained Mamba, for longer evaluations (benchmarks/mamba_long_eval.py)
        from safetensors.torch import save_model

        save_model(models["mamba"], str(ctx.dir / "mamba.safetensors"))
    mamba, attention = models["mamba"].eval(), models["attention"].eval()
    lengths = [2**k for k in range(cfg.test_log2_min, cfg.test_log2_max + 1)]
    tests = {L: induction_heads(max(cfg.eval_min, min(cfg.eval_max, cfg.eval_tokens // L)), L, cfg.vocab, gen)
             for L in lengths}
    acc = {name: [] for name in models}
    timing, peak_growth = [], []
    for L, (x, answer) in tests.items():
        t0 = time.perf_counter()
        a, growth = peak_rss_growth_mb(lambda: analysis.induction_accuracy(mamba, x, answer, cfg.segment))
        acc["mamba"].append(100 * a)
        timing.append(time.perf_counter() - t0)
        peak_growth.append(growth)  # the peak memory this evaluation added: flat across L means flat in L
        if ctx is not None:
            ctx.log(L=L, n=x.shape[0], acc_mamba=acc["mamba"][-1], eval_s=timing[-1], eval_peak_growth_mb=growth)
    for L, (x, answer) in tests.items():
        if L <= 2**cfg.attn_max_log2:
            fits = max(1, 2**26 // (cfg.attn_heads * L * L))  # sequences per pass: ~256 MB of attention pattern
            acc["attention"].append(100 * analysis.induction_accuracy(attention, x, answer, max_batch=fits))
    # Retention: recall against the distance d from the pair to the query, on sequences of d + 1 tokens (the pair
    # first, the query last): a recurrent model has no position, so this isolates how long the state remembers.
    distances = [2**k for k in range(2, cfg.test_log2_max + 1)]
    retention = [100 * analysis.induction_accuracy(
        mamba, *induction_heads(cfg.retention_n, d + 1, cfg.vocab, gen, distance=d), cfg.segment) for d in distances]
    held = [d for d, a in zip(distances, retention) if a >= 99]
    horizon = analysis.memory_horizon(mamba, induction_heads(16, 1024, cfg.vocab, gen)[0])
    out.update(
        lengths=lengths,
        acc_mamba=acc["mamba"],
        acc_attention=acc["attention"],
        min_acc_mamba=min(acc["mamba"]),
        acc_mamba_train_len=acc["mamba"][lengths.index(cfg.train_len)] if cfg.train_len in lengths else None,
        max_len=lengths[-1],
        eval_s_longest=timing[-1],
        eval_s=timing,
        eval_peak_growth_mb=peak_growth,  # per length, with eval_max/eval_min sequences of L tokens
        acc_attention_at_4x=acc["attention"][lengths.index(4 * cfg.train_len)] if 4 * cfg.train_len in lengths
        and len(acc["attention"]) > lengths.index(4 * cfg.train_len) else None,
        retention_distances=distances,
        retention_acc=retention,
        retention_max_distance_99=held[-1] if held else 0,
        memory_horizon_tokens=horizon,
        memory_horizon_max=max(horizon),
    )
    if ctx is not None:
        ctx.savefig(extrapolation_figure(lengths, acc, cfg.train_len), "extrapolation")
        ctx.savefig(retention_figure(distances, retention, cfg), "retention")
    return out


def _log2_accuracy_axes(ax, xlabel: str, title: str) -> None:
    ax.set_xscale("log", base=2)
    ax.set_ylim(-2, 102)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("accuracy (%)")
    ax.set_title(title)
    ax.legend(fontsize=8)


def extrapolation_figure(lengths, acc, train_len):
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4))
    ax.plot(lengths, acc["mamba"], "o-", label="Mamba (recurrent, segmented)")
    ax.plot(lengths[: len(acc["attention"])], acc["attention"], "s-", label="attention, absolute positions")
    ax.axvline(train_len, color="gray", ls=":", label=f"train length {train_len}")
    _log2_accuracy_axes(ax, "test sequence length", "induction heads: length extrapolation (cf. Table 2)")
    return fig


def retention_figure(distances, retention, cfg: InductionConfig):
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 3.6))
    ax.plot(distances, retention, "o-", color="C0", label=f"Mamba ({cfg.retention_n} sequences per distance)")
    ax.axvline(cfg.train_len, color="gray", ls=":", label=f"longest distance seen in training ({cfg.train_len - 1})")
    ax.axhline(100 / (cfg.vocab - 1), color="gray", ls="--", lw=0.8, label="chance")
    _log2_accuracy_axes(ax, "distance from the recalled pair to the query (tokens)",
                        "retention: recall accuracy against distance")
    return fig

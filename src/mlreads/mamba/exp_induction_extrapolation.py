"""mamba/induction-extrapolation (Table 2): train Mamba at 256, test it at every power of two with memory flat in L,
and probe its retention (accuracy with the pair to recall d tokens before the query). The attention baseline of the
same table is its own experiment (mamba/induction-attention, exp_induction_attention.py)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from mlreads.core.data.synthetic import induction_heads
from mlreads.core.fields import nonnegative, positive
from mlreads.core.memory import peak_rss_growth_mb
from mlreads.core.run.runner import RunContext
from mlreads.core.stats import proportion
from mlreads.core.train import TrainConfig, fit, recipe
from mlreads.mamba import figures
from mlreads.mamba.exp_common import (
    BETAS,
    InductionTask,
    build_mamba,
    induction_accuracy,
    induction_hits,
    induction_loss,
    induction_test,
    memory_horizon,
    param_groups,
    per_pass,
    worst_length,
)

# A test's part that is one stage: about 2^25 tokens, a few minutes at one thread (a stop loses at most that much)
STAGE_TOKENS = 2**25


@dataclass(frozen=True)
class InductionConfig(InductionTask):
    d_state: int = positive(8)
    test_log2_max: int = nonnegative(16, le=30)
    segment: int = positive(4096)  # long sequences are read in segments of this many tokens (memory flat in L)
    retention_n: int = positive(16)  # the retention curve: sequences per distance (powers of two up to 2^test_log2_max)
    # the quick recipe (constant lr, no weight decay: decay on the Δ and B/C projections caps the memory; see notes)
    train: TrainConfig = field(default_factory=lambda: recipe(2000, 1e-2, warmup=50, weight_decay=0.0, betas=BETAS,
                                                              schedule="constant"))


def run_induction(cfg: InductionConfig, ctx: RunContext) -> dict:
    """Train Mamba at train_len on induction heads, then test it at every power of two (n_test sequences each, read
    in segments with its recurrent state, so memory does not grow with L) and at the longest distance."""
    gen = ctx.generator("eval")
    val = induction_heads(512, cfg.train_len, cfg.vocab, gen)
    mamba = build_mamba(cfg.d_model, cfg.n_layers, cfg.d_state, cfg.vocab, seed=ctx.seed_for("init/mamba"))
    res = fit(mamba, cfg.train, cfg.batch_fn(cfg.train.steps), induction_loss,
              lambda m: {"acc": induction_accuracy(m, *val)}, ctx=ctx, desc="induction/mamba",
              groups=param_groups(mamba, cfg.train.weight_decay))  # fmt: skip
    out = {"train_acc_mamba": 100 * res.final["acc"], "train_s_mamba": res.elapsed_s,  # a resumed run's earlier sittings included
           "params_mamba": sum(p.numel() for p in mamba.parameters())}  # fmt: skip
    ctx.save_model("mamba", mamba)  # read back by benchmarks/mamba_long_eval.py for longer evaluations
    mamba.eval()
    lengths = [2**k for k in range(cfg.test_log2_min, cfg.test_log2_max + 1)]

    def timed(fn) -> dict:  # a test, its wall time and the peak memory it added
        t0 = time.perf_counter()
        value, growth = peak_rss_growth_mb(fn)
        return {"value": value, "s": time.perf_counter() - t0, "growth_mb": growth}

    def staged_test(stage: str, name: str, seq_len: int, distance: int | None = None) -> dict:
        """induction_test in parts, each a stage (core/run/stages.py): the full budget tests for hours after
        training (an hour at 2^20 alone), and a run stopped in the middle resumes after its last finished part. A part
        is whole passes of the test, so the sequences drawn are those of one unbroken test, bit for bit."""
        size = per_pass(cfg, seq_len)
        part = size * max(1, STAGE_TOKENS // (size * seq_len))
        starts = list(range(0, cfg.n_test, part))
        hits, seconds, growth = [], 0.0, 0.0
        for i, start in enumerate(starts):
            n = min(part, cfg.n_test - start)
            what = f"{name} at L={seq_len}" + (f" (part {i + 1} of {len(starts)})" if len(starts) > 1 else "")
            # the name says which sequences: a stage kept by another split (or by an older version) is never read
            got = ctx.stage(f"{stage}-seq{start}-{start + n}",
                            lambda n=n, what=what: timed(lambda: induction_hits(mamba, cfg, seq_len, gen, n, distance,
                                                                                cfg.segment, desc=what).tolist()),
                            gens=[gen], model=mamba)  # fmt: skip
            hits += got["value"]
            seconds += got["s"]
            growth = max(growth, got["growth_mb"])  # the peak memory a part added: flat across L means flat in L
        return {"value": proportion(name, hits, scale=100), "s": seconds, "growth_mb": growth}

    tests, timing, peak_growth = {}, [], []
    for L in lengths:
        got = staged_test(f"test-L{L}", "acc_mamba", L)
        tests[L] = got["value"]
        timing.append(got["s"])
        peak_growth.append(got["growth_mb"])
        ctx.log(L=L, n=cfg.n_test, acc_mamba=tests[L]["acc_mamba"], eval_s=timing[-1],
                eval_peak_growth_mb=peak_growth[-1])  # fmt: skip
    # Retention: recall against the distance d from the pair to the query, on sequences of d + 1 tokens (the pair
    # first, the query last): a recurrent model has no position, so this isolates how long the state remembers. The
    # curve uses retention_n sequences per distance; the longest distance is tested with n_test, as a check.
    d_max = 2**cfg.test_log2_max
    distances = [2**k for k in range(2, cfg.test_log2_max + 1)]
    short = InductionTask(vocab=cfg.vocab, n_test=cfg.retention_n)
    curve = ctx.stage("retention-curve", lambda: [induction_test("r", mamba, short, d + 1, gen, distance=d,
                                                                 segment=cfg.segment)["r"] for d in distances],
                      gens=[gen], model=mamba)  # fmt: skip
    got = staged_test("retention-longest", "retention_longest", d_max + 1, distance=d_max)
    longest = got["value"]
    held = [d for d, a in zip(distances, curve, strict=True) if a >= 99]
    horizon = memory_horizon(mamba, induction_heads(16, 1024, cfg.vocab, gen)[0])
    acc = [tests[L]["acc_mamba"] for L in lengths]
    out.update(
        lengths=lengths,
        acc_mamba=acc,
        acc_mamba_ci=[tests[L]["acc_mamba_ci"] for L in lengths],
        **worst_length(tests, "acc_mamba"),
        acc_mamba_train_len=tests[cfg.train_len]["acc_mamba"] if cfg.train_len in tests else None,
        n_test=cfg.n_test,
        max_len=lengths[-1],
        eval_s=timing,
        eval_s_retention_longest=got["s"],
        eval_peak_growth_mb=peak_growth,  # per length, with eval_batch_tokens / L sequences of L tokens per pass
        retention_distances=distances,
        retention_acc=curve,
        retention_max_distance_99=held[-1] if held else 0,
        retention_longest_distance=d_max,
        **longest,
        memory_horizon_tokens=horizon,
        memory_horizon_max=max(horizon),
    )
    ctx.savefig(figures.extrapolation_figure(lengths, {"mamba": acc}, chance=1 / (cfg.vocab - 1),
                                             train_len=cfg.train_len),
                "extrapolation",
                caption=("Induction-heads recall accuracy against test sequence length for Mamba (run recurrently, "
                         f"in segments; {cfg.n_test} sequences per length), trained at the length marked by the "
                         "dotted line; the dashed line is chance. The claim predicts Mamba stays near 100% out to the "
                         f"longest length ({lengths[-1]:,} tokens here)."))  # fmt: skip
    ctx.savefig(figures.retention_figure(distances, curve, cfg.retention_n, chance=1 / (cfg.vocab - 1),
                                         train_len=cfg.train_len),
                "retention",
                caption=("Mamba's recall accuracy when the pair to recall lies d tokens before the query (sequences "
                         "of d + 1 tokens, so position plays no part): how long its state remembers. The dotted line "
                         "marks the longest distance seen in training, the dashed line chance; extrapolation needs "
                         "the curve to stay near 100% well to the right of the dotted line. Here it stays at or "
                         f"above 99% up to d = {out['retention_max_distance_99']:,}; at d = {d_max:,}, "
                         f"{longest['retention_longest']:.1f}% of {cfg.n_test} sequences."))  # fmt: skip
    return out

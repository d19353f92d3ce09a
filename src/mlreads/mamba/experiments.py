"""Experiments for Mamba (Gu & Dao 2023, arXiv 2312.00752): Table 1 (selective copying), Table 2 (induction heads
extrapolation, Mamba and the attention baseline) and, in the spirit of Table 3 / Figure 4, a small language model against a Transformer.

Deviations (all budgets; each experiment's notes add its own):
- Models are far smaller and trained far shorter than in the paper (which trains 400K steps on Table 1/2 tasks);
  the quick budgets use d_model=32 for the synthetic tasks so that both models fit 10 CPU minutes.
- The synthetic tasks are learned with a curriculum: the run is cut into equal stages on shorter (and, for copying,
  fewer-token) instances, and always ends on the task itself; accuracy is always measured on the task itself.
- The S4 baseline of Table 1 is our LTI ablation of the same block (`MambaConfig.selective=False`): Δ, B and C are
  parameters, not functions of the input; see `mlreads.mamba.model`.
- The attention baseline of Table 2 is `mlreads.gpt.GPT` (learned absolute positions, as the paper's "MHA-Abs");
  positions beyond the training length keep their initial embeddings.

This module holds the declarations (configs per budget, checks, notes). The run functions, with their config
dataclasses, live in exp_selective_copying.py, exp_induction_extrapolation.py, exp_induction_attention.py,
exp_lm_vs_transformer.py and exp_discretization_cost.py; what they share is in exp_common.py.
"""

from __future__ import annotations

from mlreads.core.run.registry import Experiment, at_least, at_most, holds, register
from mlreads.core.train import recipe
from mlreads.mamba.exp_common import BETAS
from mlreads.mamba.exp_induction_attention import (
    AttentionInductionConfig,
    run_induction_attention,
)
from mlreads.mamba.exp_induction_extrapolation import InductionConfig, run_induction
from mlreads.mamba.exp_lm_vs_transformer import LMConfig, run_lm
from mlreads.mamba.exp_selective_copying import CopyingConfig, run_selective_copying

# Quick and full runs of the two recipes whose training step was measured faster at 2 threads than at 1 on the 2-core
# machine (benchmarks/mamba_train_step.py, issue 25: selective copying 1.40x, induction 1.28x by wall time with
# OMP_WAIT_POLICY=PASSIVE) use both cores by default; quick's budget is wall time. --threads 1 overrides.
TWO_CORES = {"quick": 2, "full": 2}

# ===== mamba/selective-copying ========================================================================================

COPYING = {
    "smoke": CopyingConfig(seq_len=24, n_memorize=3, batch_size=32, eval_size=256,
                           train=recipe(300, 1e-2, warmup=20, weight_decay=0.1, betas=BETAS)),
    # a constant learning rate, as in the paper (Appendix E.1: constant 1e-4, batch 64, 400K steps)
    # design 2: as many steps as fit the quick budget at 2 threads (see the notes), was 2500 at one thread
    "quick": CopyingConfig(curriculum_len=(32, 32, 64, 64, 256), curriculum_mem=(4, 8, 16, 16, 16),
                           train=recipe(9000, 5e-3, warmup=50, eval_every=500, weight_decay=0.1, betas=BETAS,
                                        schedule="constant")),
    # the paper's model (d_model 64, d_state 16) at length 256, quick's curriculum stretched to ten stages (six at
    # 256): 0.18 CPU-s per S6 step at 256 measured, so a checkpoint every 2000 steps is ~6 minutes
    "full": CopyingConfig(seq_len=256, d_model=64, d_state=16, batch_size=32,
                          curriculum_len=(32, 32, 64, 64, 256, 256, 256, 256, 256, 256),
                          curriculum_mem=(4, 8, 16, 16, 16, 16, 16, 16, 16, 16),
                          train=recipe(30_000, 5e-3, warmup=200, eval_every=1000, weight_decay=0.1, betas=BETAS,
                                       schedule="constant", ckpt_every=2000)),
}

register(
    Experiment(
        id="mamba/selective-copying",
        claim="S6 (selective) solves selective copying; S4 (time-invariant) does not.",
        paper_value="Table 1: Mamba architecture S6 99.8 vs S4 56.4; no gate S6 97.0 vs S4 18.3 (length 4096)",
        configs=COPYING,
        run=run_selective_copying,
        checks={
            "smoke": [at_least("acc_s6", "acc_lti", margin=15), at_least("acc_s6", 30)],
            "quick": [at_least("acc_s6", 95), at_least("acc_s6", "acc_lti", margin=30),
                      holds("delta_data_gt_noise", "geometric-mean Δ on data tokens > on noise tokens, in the most "
                            "selective channels (delta_log_ratio_top > 0)")],
            "full": [at_least("acc_s6", 99), at_least("acc_s6", "acc_lti", margin=30)],
        },
        headline="acc_s6",
        threads=TWO_CORES,
        full_scale=(
            "Largest faithful scale: the paper's 2-layer model (d_model 64, d_state 16) and task (vocab 16, 16 "
            "tokens to copy), S6 and its LTI ablation, 30,000 steps of 32 each at quick's constant lr, ending on "
            "bodies of 256 tokens after a ten-stage curriculum; the paper: 400K steps of 64 at length 4096 "
            "(constant lr 1e-4); why: a step at 4096 costs about 16 times one at 256 on this CPU, so the paper's "
            "run would take months; about 1.8 CPU-hours here (estimate: 0.18 CPU-s per S6 step at 256 measured; "
            "wall time at the default two threads is lower)."
        ),
        notes=(
            "Format (S4 repo's copying task with variable spacing, as in Mamba Table 1): noise token 0 everywhere "
            "except n_memorize data tokens at random positions, then n_memorize marker tokens at which the model must "
            "output the data tokens in order; accuracy is per copied token. Chance is 1/(vocab-2). The selection "
            "figure shows Δ (softplus output, layer 0) over one input: the paper's reading (Section 3.5.1) is that a "
            "large Δ writes the current token into the state and a small Δ ignores it, so data tokens should get the "
            "larger Δ. Δ spans orders of magnitude, so it is compared in log space (geometric means; "
            "delta_log_ratio_top = mean log Δ on data − on noise). 'Channels that matter' are chosen without labels: "
            "the 1/8 of channels whose log Δ varies most over positions; arithmetic means are reported too. Noise "
            "positions within d_conv - 1 = 3 tokens after a data token are left out of the noise mean: the causal "
            "conv shows them the data token. Deviations: smaller models (d_model 32, d_state 16) and 9000 steps per "
            "model at quick against the paper's 400K, with a curriculum (five equal stages: bodies of 32, 32, 64, 64, "
            "256 tokens with 4, 8, 16, 16, 16 tokens to copy; without it both models stayed at chance at length 256); "
            "acc_s6_by_position shows which of the copied tokens fail. The S4 baseline is our LTI ablation of the "
            "same block. Quick's steps (design 2) are what fits its 10 minutes of wall time at 2 threads on this "
            "2-core machine, fixed from the step's cost before any run of the design: S6 about 62 ms and LTI 15 ms "
            "of CPU per step over the curriculum at one thread (a 500-step probe), 2 threads 1.40x faster than one "
            "(benchmarks/mamba_train_step.py on a quiet machine), so 9000 steps per model take about 9 minutes. "
            "Before (S6 alone, seed 0, one thread): the cosine schedule reached 51.0% in 2500 steps, a constant "
            "5e-3 56.6%; 5000 steps with three fifths at length 256 reached 85.3% (405 CPU s); d_model 64 (the "
            "paper's) learned faster per step but reached 83.2% in 3000 steps (577 CPU s); an earlier 10,000-step "
            "run reached 94.5-95.3%. Design 1 trained 2500 steps per model at one thread (56.6% at quick, "
            "budget-limited); issue 25's faster step and the second core buy the rest. "
            "Full: the paper's d_model 64, 30,000 steps per model on a ten-stage curriculum (32, 32, 64, 64, then "
            "six stages at 256 with 16 tokens to copy), still at length 256, not 4096."
        ),
    )
)


# ===== mamba/induction-extrapolation ==================================================================================

INDUCTION = {
    "smoke": InductionConfig(train_len=32, batch_size=32, test_log2_min=5, test_log2_max=7, n_test=128,
                             retention_n=16, train=recipe(300, 1e-2, warmup=20, weight_decay=0.0, betas=BETAS)),
    # the paper's schedule: a constant learning rate (Appendix E.1), no weight decay
    "quick": InductionConfig(curriculum=(32, 64, 256, 256),
                             train=recipe(2000, 1e-2, warmup=50, eval_every=250, weight_decay=0.0, betas=BETAS,
                                          schedule="constant")),
    "full": InductionConfig(d_model=64, d_state=16, test_log2_max=20,
                            curriculum=(32, 64, 256, 256, 256, 256, 256, 256),
                            train=recipe(20_000, 1e-3, warmup=500, eval_every=1000, weight_decay=0.0,
                                         betas=BETAS, schedule="constant", ckpt_every=2000)),  # 0.17 CPU-s a step
}


def _mamba_induction_checks(log2_max: int) -> list:
    return [at_least("min_acc_mamba", 99, ci="min_acc_mamba_ci",
                     name=f"Mamba recalls >= 99% at every length 2^6..2^{log2_max} (the worst length's interval)"),
            at_least("retention_longest", 99, ci="retention_longest_ci",
                     name=f"Mamba recalls >= 99% with the pair 2^{log2_max} tokens before the query (retention)")]


register(
    Experiment(
        id="mamba/induction-extrapolation",
        claim="Mamba solves induction heads and extrapolates from length 256 to 2^20 (4096x): >= 99% at every power "
              "of two, and with the pair to recall as far before the query as the longest length (quick: to 2^16).",
        paper_value="Table 2: Mamba 100% at every length 2^6..2^20",
        configs=INDUCTION,
        run=run_induction,
        checks={
            # trained at 32 for seconds; chance is 1/15 = 6.7%
            "smoke": [at_least("acc_mamba_train_len", 40), at_least("min_acc_mamba", 30)],
            "quick": _mamba_induction_checks(16),
            "full": _mamba_induction_checks(20),
        },
        headline="min_acc_mamba",
        threads=TWO_CORES,
        full_scale=(
            "Largest faithful scale: the paper's 2-layer Mamba (D = 64, d_state 16) trained at length 256 (20,000 "
            "steps of 32 with a length curriculum, 640K sequences) and tested at every power of two to 2^20 and "
            "for retention at 2^20, 400 sequences each; the paper: 204,800 steps of 8 (1.6M sequences) at a "
            "constant lr; why: more training does not fit, and the test cannot shrink: 400 sequences are the "
            "fewest whose 0 errors clear 99% by two standard errors, and at 2^20 each costs about 7 CPU-s; about "
            "3.5 CPU-hours here, 2.6 of them the test (estimate: 0.17 CPU-s per training step and 7-9 CPU-us per "
            "tested token measured; wall time at the default two threads is lower)."
        ),
        notes=(
            "Why this design is a fair test. Table 2 (Appendix E.1) trains a 2-layer Mamba (D = 64) at length 256 on "
            "induction heads (vocab 16, batch 8, constant lr, 204,800 steps) and reports 100% at every length 2^6 "
            "to 2^20. A claim of ~100% is tested here as '>= 99%' on enough sequences to tell: 400 fresh sequences "
            "per length (0 errors in 400 has a Wilson lower end of 99.0% at two standard errors; 8 sequences, the "
            "first design's count at 2^16, bound it only to 69%), the worst length's interval deciding. Retention is "
            "the mechanism the extrapolation rests on: with the pair to recall d tokens before the query (sequences "
            "of d + 1 tokens, so position plays no part) a recurrent model must keep it in its state over d tokens; "
            "it is checked at the longest distance with 400 sequences, and drawn for every power of two with 16. "
            "The attention baseline of the same table is its own experiment (mamba/induction-attention), so that "
            "whether it learned does not decide this claim's verdict. "
            "Format (H3/safari induction head): random tokens, a special token followed by the token to recall at a "
            "random position, the special token again at the end; the model must output the recalled token at the "
            "last position, and the loss is taken there only. Mamba is tested at every power of two by reading the "
            "input in segments with its recurrent state (conv and SSM state carried over), so memory is flat in the "
            "length. memory_horizon_tokens is, per layer, 1 / the slowest typical decay rate median_t(Δ_t)|A| of any "
            "state entry (see mlreads.mamba.exp_common.memory_horizon). No weight decay: measured at quick, decay 0.1 "
            "on the Δ and B/C projections capped the slowest decay at ~7e-4 per step (a memory of ~1,500 tokens). "
            "The learning rate is constant, as in the paper. Deviations: a smaller model (d_model 32, d_state 8) at "
            "quick, trained 2000 steps at batch 32 (the paper: 204,800 at batch 8, 1.6M sequences against our 64K; "
            "a public reproduction, state-spaces/mamba#62, needed ~40k steps at batch 8) with a length curriculum "
            "(four equal stages at 32, 64, 256, 256; never longer than 256), at lr 1e-2 (the paper's 1e-3 does not "
            "move the decay rates far enough in 2000 steps); the smoke budget trains at length 32 and tests up to "
            "128. Quick is therefore budget-limited: extrapolating to L needs Δ|A| on irrelevant tokens << 1/L, "
            "which long over-training at 256 pushes down; full (20,000 steps at batch 32, d_model 64) carries the "
            "claim to 2^20 with the same powered test. "
            "History: the first design tested clamp(2^19 / L, 8, 256) sequences per length and passed seed 0 on 8 "
            "sequences at 2^16, where its own 16-sequence retention probe gave 68.75% at d = 65,536 (seeds 1 and 2 "
            "failed: 75% and 50% at 2^16)."
        ),
    )
)


# ===== mamba/induction-attention ======================================================================================

INDUCTION_ATTENTION = {
    # smoke: length 16 (at 32 it stayed near chance for 1,000 steps at lr 1e-3 and 3e-3), tested to 64
    "smoke": AttentionInductionConfig(train_len=16, batch_size=32, test_log2_min=4, max_log2=6, n_test=128,
                                      train=recipe(800, 3e-3, warmup=20, weight_decay=0.0, betas=BETAS)),
    # quick: the length doubles stage by stage, so that at most half of the positions are new when it grows (learned
    # positions are learned outward from the trained range, per step: see the notes); two stages per length, four
    # at 256. About 470 CPU-s of training and 40 of testing at one thread.
    "quick": AttentionInductionConfig(curriculum=(32, 32, 64, 64, 128, 128, 256, 256, 256, 256),
                                      train=recipe(4400, 1e-3, warmup=50, eval_every=550, weight_decay=0.0,
                                                   betas=BETAS, schedule="constant")),
    # full: the same doubling, two stages per length below 256 and six at 256 (half the run)
    "full": AttentionInductionConfig(d_model=64, curriculum=(32, 32, 64, 64, 128, 128, 256, 256, 256, 256, 256, 256),
                                     train=recipe(20_000, 2e-4, warmup=500, eval_every=1000, weight_decay=0.0,
                                                  betas=BETAS, schedule="constant", ckpt_every=2000)),
}
_attention_checks = [at_most("acc_attention_4x", 50, ci="acc_attention_4x_ci",
                             name="at 4x its training length attention recalls <= 50% (it does not extrapolate)")]

register(
    Experiment(
        id="mamba/induction-attention",
        claim="Attention with learned absolute positions, once it solves induction heads at its training length "
              "(256), does not extrapolate: at 4x that length it recalls at most half the time.",
        paper_value="Table 2, MHA-Abs: 100% at 256 (its training length), 58.6% at 512, 26.6% at 1024, OOM beyond",
        configs=INDUCTION_ATTENTION,
        run=run_induction_attention,
        checks={
            "smoke": [at_least("acc_attention_train_len", "chance", margin=10,
                               name="attention recalls above chance + 10 points at its training length")],
            "quick": _attention_checks,
            "full": _attention_checks,
        },
        preconditions={b: [at_least("acc_attention_train_len", 95, ci="acc_attention_train_len_ci",
                                    name="attention learned the task at its training length (>= 95%)")]
                       for b in ("quick", "full")},  # fmt: skip
        headline="acc_attention_4x",
        full_scale=("Largest faithful scale: the paper's MHA-Abs shape (2 layers, d_model 64) trained 20,000 steps of "
                    "32 at its lr 2e-4 on a length curriculum ending at 256, tested to 2^11 while its L^2 attention "
                    "fits; the paper: 204,800 steps of 8 at length 256, tested to 2^20 (it runs out of memory beyond "
                    "2^14 there too); why: the budget; about 1.5 CPU-hours here (estimate: quick's 498 CPU-s for "
                    "4,400 steps at d_model 32, scaled by steps and width). Its curriculum doubles the length as "
                    "quick's design 2 does (two stages each at 32, 64 and 128, then six at 256)."),
        notes=(
            "Why this design is a fair test. Table 2's MHA-Abs row (attention with absolute positional embeddings, "
            "trained at 256 with the Mamba recipe at its better lr of 2e-4 and 1e-3) reaches 100% at its training "
            "length and falls to 58.6% at 512 and 26.6% at 1024. A failure to extrapolate means something only for "
            "a model that learned the task, so the precondition is >= 95% at the training length (by its Wilson "
            "interval, 400 sequences); a seed whose baseline did not learn is inconclusive, not evidence. The check: "
            "at 4x the training length it recalls at most half the time (the paper: 26.6%), by its interval on 400 "
            "sequences. The model is mlreads.gpt.GPT (learned absolute positions; positions beyond the training "
            "length keep their initial embeddings), 2 layers, 4 heads, on the same data, loss (last position only) "
            "and recipe as Mamba (constant lr, no weight decay), tested while its L^2 attention fits (to 2^11). "
            "Deviations at quick, for the budget: the paper trains at 256 throughout for 1.6M sequences (204,800 "
            "steps at batch 8); quick trains 4,400 steps at batch 32 and lr 1e-3, d_model 32 (the paper's 64 with 2 "
            "heads extended its positions more slowly in probes), with a length curriculum that doubles the length "
            "stage by stage (10 equal stages: 32, 32, 64, 64, 128, 128, then 256 four times; never longer than 256). "
            "Why the doubling: learned absolute positions are separate parameters, each trained only by sequences "
            "whose pair sits next to it (one position per sequence, as the loss is at the last position only), and in "
            "probes they were learned outward from the already-trained range, at a rate per optimiser step. Jumping "
            "from 64 to 256 leaves 192 new positions to learn with the dearest steps: from one checkpoint trained at "
            "32 and 64, 700 steps at 256 reached 58.8% at 256 (pairs past position 160 at chance), while the same CPU "
            "time spent as 500 steps at 128 then 500 at 256 reached 95.0% (probe seed 1; seed 0, after 600 steps at "
            "256: 86% without a 128 stage, 92% with 600 steps at 128 before). From the seed-0 checkpoint, batch 8 "
            "(the paper's) with 4x the steps reached 77% (pairs past 192 at 35% and less) and batch 64 with half the "
            "steps 65% (past 160 at chance), against 95% at batch 32, so batch 32 stays. None of this trains a "
            "position beyond 256, so it cannot make the model extrapolate; it only lets the baseline learn what the "
            "paper's did. Full keeps d_model 64 and 20,000 steps at 2e-4 on the same doubling curriculum (two stages each "
            "at 32, 64 and 128, six at 256). "
            "History: design 1 (curriculum 32, 64, 256, 256 over 4,000 steps, lr 1e-3, d_model 32) reached only "
            "88.25% at 256 on seed 0 (train accuracy 90.4%, still creeping up), so its precondition failed; before "
            "it, this baseline was part of mamba/induction-extrapolation, with no check and no precondition."
        ),
    )
)


# ===== mamba/lm-vs-transformer ========================================================================================

LM = {
    "smoke": LMConfig(d_model=32, mamba_layers=2, gpt_layers=1, n_ctx=32, batch_size=16, eval_batches=4,
                      train=recipe(150, 3e-3, warmup=15, eval_every=75, weight_decay=0.1, betas=BETAS)),
    "quick": LMConfig(train=recipe(700, 2e-3, warmup=70, eval_every=100, weight_decay=0.1, betas=BETAS)),
    # width 128: 7 Mamba blocks (827k parameters) against 4 Transformer blocks (831k); 0.66 and 0.49 CPU-s per step
    # measured, so a checkpoint every 500 steps is ~5 minutes
    "full": LMConfig(d_model=128, gpt_layers=4, gpt_heads=4, mamba_layers=7, n_ctx=256, batch_size=16,
                     eval_batches=50,
                     train=recipe(3500, 1e-3, warmup=200, eval_every=500, weight_decay=0.1, betas=BETAS,
                                  ckpt_every=500)),
}

register(
    Experiment(
        id="mamba/lm-vs-transformer",
        claim="Mamba matches or beats a Transformer of the same size on language modelling (spirit of Table 3).",
        paper_value="Table 3 / Figure 4: Mamba matches Transformer++ perplexity at equal size from 125M to 1.3B (Pile)",
        configs=LM,
        run=run_lm,
        checks={
            "smoke": [at_most("val_loss_mamba", "unigram_entropy", margin=0.2),
                      at_most("val_loss_transformer", "unigram_entropy", margin=0.2)],
            "quick": [at_most("val_loss_gap", 0.02), at_most("val_loss_gap_equal_time", 0.02),
                      holds("params_within_10pct", "parameter counts within 10%")],
            "full": [at_most("val_loss_gap", 0.02), at_most("val_loss_gap_equal_time", 0.02),
                     holds("params_within_10pct", "parameter counts within 10%")],
        },
        requires=("text",),
        headline="val_loss_mamba",
        full_scale=(
            "Largest faithful scale: character-level models of 0.83M parameters (width 128: 7 Mamba blocks against "
            "4 Transformer blocks, within 1%), 3500 steps of 16 x 256 characters (14M, about three passes over the "
            "corpus), plus the equal-time Transformer; the paper: 125M to 1.3B parameters on the Pile with a BPE "
            "tokenizer (GPUs); why: the previous full (width 384, 12 against 6 blocks, 64 x 256 per step) costs "
            "about 22 CPU-s per Transformer step alone (over 100 CPU-hours for the three runs); about 1.8 "
            "CPU-hours here (estimate from 0.66 and 0.49 CPU-s per step measured)."
        ),
        notes=(
            "Character-level language modelling on the corpus (mlreads.core.data.text), not the Pile with a BPE "
            "tokenizer; models of ~0.1M (quick) and ~0.8M (full) parameters instead of 125M-1.3B. Equal parameters "
            "(within 10%, counts reported): the same width, 3 Mamba blocks against 2 Transformer blocks at quick "
            "(width 64) and 7 against 4 at full (width 128): at these widths the per-channel state parameters weigh "
            "more than in the paper, whose rule is two Mamba blocks per Transformer block. Equal tokens: the same "
            "batches (the same data generator seed) and steps. Equal time: a second, fresh Transformer trains for "
            "steps x (Mamba's wall time / the first Transformer's), measured in the same run, so it sees more tokens; "
            "on a CPU the sequential scan is slower per token than attention at these short contexts. Learning rates "
            "differ (each model's own), as in the paper's recipes. The checks are val_loss_gap = val_loss_mamba - "
            "val_loss_transformer <= 0.02 (equal tokens) and val_loss_gap_equal_time <= 0.02 (equal time)."
        ),
    )
)


# ===== mamba/discretization-cost ======================================================================================

from mlreads.mamba.exp_discretization_cost import (  # noqa: E402
    DiscretizationConfig,
    run_discretization,
)

register(
    Experiment(
        id="mamba/discretization-cost",
        claim="With a diagonal A, per-token ZOH discretisation costs O(N), not the O(N^3) of a dense A's matrix "
              "exponential and inverse (Section 3.5); the two agree when the dense A is diagonal.",
        paper_value="Section 3.5 / Appendix: A is diagonal (S4D), so Ā = exp(ΔA) is elementwise; the scan's speed "
                    "comes from not materialising the (B, L, D, N) state (Section 3.3.2)",
        configs={
            "smoke": DiscretizationConfig(dense_ns=(64, 128, 256, 512), diag_ns=(1024, 4096, 16384, 65536),
                                          dense_tokens=8, reps=2),
            "quick": DiscretizationConfig(dense_ns=(16, 32, 64, 128, 256, 512), diag_ns=(1024, 4096, 16384, 65536,
                                                                                      262144), reps=5),
            "full": DiscretizationConfig(dense_ns=(16, 32, 64, 128, 256, 512, 1024),
                                         diag_ns=(1024, 4096, 16384, 65536, 262144, 1048576), reps=7),
        },
        run=run_discretization,
        checks={b: [at_least("exponent_dense", 2.2), at_most("exponent_dense", 3.4),
                    at_least("exponent_diag", 0.7), at_most("exponent_diag", 1.3),
                    at_most("max_abs_diff_dense_diag", 1e-10), at_least("dense_over_diag_at_n", 100)]
                for b in ("smoke", "quick", "full")},
        headline="exponent_dense",
        full_scale=(
            "The paper's recipe: Section 3.5's per-token ZOH discretisation of one channel, timed for a dense A "
            "(matrix exponential and solve, N from 16 to 1024) and for Mamba's diagonal A (N to 2^20), best of 7 "
            "repetitions; nothing is trained; about 0.05 CPU-hours here (estimate: 0.75 CPU-s per dense token at "
            "N = 1024 measured)."
        ),
        notes=(
            "Correction to the reading list: it says discretising with a varying Δ 'would be slow because you have to "
            "find the inverse of a matrix' for every token, and that the hardware-aware kernel solves this. For a "
            "dense A that is true (matrix exponential and solve, O(N^3) per token: the fitted exponent here), but "
            "Mamba's A is diagonal (Section 3.5, S4D), so ZOH is elementwise, O(N) per channel and token, with no "
            "inverse at all; the official code even replaces ZOH's B̄ by ΔB (euler_vs_zoh_B_rel_gap measures that "
            "simplification at Mamba's Δ init range). The hardware-aware kernel (Section 3.3.2) solves a different "
            "problem: not writing the (B, L, D, N) expanded state to slow memory (our fused CPU kernel: "
            "mlreads/mamba/csrc). Timings: one channel, per token, best of reps; the diagonal path's exponent is "
            "fitted on large N where the per-call overhead no longer dominates, and dense_over_diag_at_n compares "
            "the two at the dense path's largest N (the diagonal time there read off its fit)."
        ),
        tags=("speed",),
    )
)

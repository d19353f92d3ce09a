"""Declarations of the encoder-decoder Transformer experiments (Vaswani et al. 2017). The runs live in
exp_seq2seq.py, exp_ablations.py and exp_scaled_dot_product.py."""

from __future__ import annotations

from mlreads.attention import RNNSearchConfig
from mlreads.core.data.translation import TranslationConfig
from mlreads.core.run.registry import Experiment, at_least, at_most, holds, register
from mlreads.transformer.exp_ablations import AblationConfig, run_ablations
from mlreads.transformer.exp_scaled_dot_product import ScaledDotConfig, run_scaled_dot
from mlreads.transformer.exp_seq2seq import Seq2SeqConfig, run_seq2seq

_seq2seq_quality = [at_least("bleu_gap", 0.0, strict=True, ci="bleu_gap_ci",
                             name="BLEU(Transformer) > BLEU(RNNsearch) at equal CPU time (paired interval)")]
_seq2seq_preconditions = [
    at_most("bleu_min", 95.0, name="not both at the ceiling: the lower test BLEU <= 95 (a ceiling hides the sign of "
                                   "a difference only when both models are at it)"),
    at_least("bleu_min", 10.0, name="both models learned the task: test BLEU >= 10"),
]

register(Experiment(
    id="transformer/seq2seq",
    claim="The Transformer translates better than recurrent attention (Table 2's quality half): a higher BLEU than "
          "RNNsearch at equal CPU time on a pseudo-German task (gender agreement, verb-final clauses) that does not "
          "saturate. Its cost half rests on parallel hardware; throughput at 1 and 2 threads is reported.",
    paper_value="WMT'14 En-De 27.3 / En-Fr 38.1 BLEU (base) at 3.3e18 FLOPs, above every recurrent model in Table 2",
    configs={
        "smoke": Seq2SeqConfig(data=TranslationConfig(task="copy", n_adjectives=10, n_nouns=20, n_verbs=10,
                                                      min_len=5, max_len=10),
                               corpus=0, d_model=32, n_heads=4, d_mlp=64, dropout=0.0, warmup=100, peak_lr=None,
                               steps=250, time_s=60.0, eval_every=150, n_dev=20, n_test=100, compare=False,
                               throughput_steps=0),
        "quick": Seq2SeqConfig(),
        "full": Seq2SeqConfig(d_model=128, n_heads=4, d_mlp=512, n_layers=6, warmup=800, time_s=3600.0,
                              eval_every=250, corpus=500_000, n_dev=300, n_test=2000,
                              rnnsearch=RNNSearchConfig(d_embed=64, d_hidden=128, d_maxout=64, d_align=128)),
    },
    run=run_seq2seq,
    checks={
        "smoke": [at_least("token_acc_transformer", 0.9, name="the copy task: next-token accuracy >= 0.9")],
        "quick": _seq2seq_quality,
        "full": _seq2seq_quality,
    },
    preconditions={"quick": _seq2seq_preconditions, "full": _seq2seq_preconditions},
    headline="bleu_gap",
    full_scale=("Largest faithful scale: the Transformer at the paper's depth (N=6) and width 128 against RNNsearch "
                "at twice quick's width, an hour of CPU each, on the same synthetic pseudo-German task (500,000 "
                "pairs, sentences up to 50 words); the paper: WMT 2014 English-German (4.5M pairs) and the base "
                "model (d_model 512) trained 12 hours on 8 P100 GPUs; why: no real parallel corpus is installable "
                "offline, and the base model's training is thousands of GPU-hours of CPU here; about 2 CPU-hours "
                "here (two one-hour budgets). Not resumable yet: each model trains for a fixed CPU time, which a "
                "resumed run cannot replay exactly (no checkpoints are written)."),
    notes=(
        "Why this design is a fair test. Table 2 puts the base Transformer (27.3 BLEU on WMT'14 En-De, 12 hours on 8 "
        "P100 GPUs) above every recurrent model at a fraction of their training cost, where cost is training time x "
        "GPUs x sustained FLOPS: a hardware-time measure driven by parallelism across positions (Table 1: O(1) "
        "sequential operations per layer against O(n) for recurrent layers). Better BLEU at lower cost implies better "
        "BLEU at equal cost, and that quality half is tested here on one CPU thread: both models train for the same "
        "CPU seconds (240 s at quick; CPU time, so that load on a shared machine does not decide it; each model's "
        "dev evaluations are inside its clock and reported, eval_cpu_s) on the same fixed corpus, and the check is "
        "the test BLEU difference with a paired bootstrap interval over 1,000 test sentences (Koehn 2004). "
        "The task is the paper's kind of problem: Section 4 credits self-attention with short paths between "
        "long-range dependencies, and WMT'14 En-De is hard for exactly such rules, so the language (pseudo-German) "
        "has them: three grammatical genders, a lexical property of each of 600 nouns, with which the target "
        "determiner and adjectives agree (the determiner precedes its noun by up to three words) and with which the "
        "verb agrees (its subject's); verb-final subordinate clauses (C NP V NP -> C' NP' NP' V', a reordering across "
        "the object); French-style noun phrases (F A1 A2 N -> F' N' A2' A1'); 1,230 source words (2,454 target "
        "forms) with Zipfian frequencies, so rare words and their rare genders decide part of the score as in real "
        "text; a fixed corpus of 50,000 pairs of 5-50 words. Every model of Table 2 is far from any ceiling (20-41 "
        "BLEU), which is the regime the claim speaks of. "
        "The preconditions. Both models must have learned the task (test BLEU >= 10), and they must not both be at "
        "the ceiling (the lower BLEU <= 95): a ceiling hides the sign of a difference only when both models are at "
        "it; when one is at it and the other well below, the one at the ceiling is the better at equal time, and "
        "only the size of its lead is truncated (the second design required both <= 95, and so called its run "
        "inconclusive when RNNsearch reached 99.4 against the Transformer's 79.8, a sign no ceiling hid). "
        "The cost half is not checked on this machine: on one thread a Transformer step costs about what an "
        "attention-RNN step costs (an audit probe: 252 against 208 sentences per CPU-second at batch 32, 233 "
        "against 373 at batch 128), and the paper's advantage is parallel hardware. The run reports, for both "
        "models, training sentences per wall-clock second at 1 and 2 threads (a fixed batch of 32, the best of 3 "
        "timings of 10 steps) with the CPU milliseconds per sentence of the same timing, the machine's CPU count "
        "and 1-minute load average: the 2-thread speedup is a property of the machine's load as much as of the "
        "model (the second design measured 0.66 for the Transformer and 0.61 for RNNsearch on a loaded 2-core "
        "machine, slower with 2 threads than with 1), so it is read only beside the load and the CPU per sentence. "
        "It also reports each model's CPU time to 90% of the lower final dev BLEU, and its mean dev BLEU over the "
        "run (the area under the curve over the time). "
        "What differs from the paper, and why. The Transformer is the paper's base recipe scaled down (post-LN, N=2, "
        "d=64, h=4, d_ff=256, P_drop 0.1, ε_ls 0.1, Adam (0.9, 0.98, 1e-9)) with Eq. 3 itself at d_model 64 and "
        "warmup 400 (peak 6.25e-3), the paper's schedule and the fastest-learning of those tried for a race of "
        "minutes: a probe of this design with Eq. 3's shape at the paper's base-model peak, 7.0e-4 (the rate "
        "transformer/ablations trains at, for convergence over thousands of steps), left the Transformer at 1.8 dev "
        "BLEU after 170 CPU-s, a model that had not started to learn, so that probe's design would have been "
        "inconclusive by the 'both learned' precondition; at 6.25e-3 the second design's Transformer learned on "
        "the easier task without stalling. RNNsearch is attention/rnnsearch-vs-rnnencdec's model "
        "(Bahdanau et al.'s architecture at d_hidden 64; Adam at a constant 2e-3, where the paper used Adadelta). "
        "Greedy decoding for both (the paper: beam 4). The smoke budget is the copy task, a pipeline check. "
        "Full: the paper's base (65M parameters, 100k steps of 25k tokens on 8 GPUs) is far beyond two CPU-hours, so "
        "full keeps the paper's depth (N=6) at a quarter of its width (d=128, h=4, d_ff=512, warmup 800) against an "
        "RNNsearch twice quick's width (d_embed 64, d_hidden 128), an hour of CPU each on a 500,000-pair corpus "
        "(full is untried at this design). "
        "History: the first design's task saturated (99.65 against 99.80 BLEU: two ceiling values), and its cost "
        "check ('the Transformer reaches RNNsearch's final dev BLEU in <= half its time') was decided on a 100-"
        "sentence dev plateau and cannot show a parallelism advantage on one thread. The second (1,230 Zipfian words "
        "without agreement or verb movement, 180 s each, Eq. 3 at d_model 64) still saturated for RNNsearch (99.4 "
        "against 79.8), and measured throughput once per setting on a loaded machine."
    ),
))

def _ablation_checks(heads: bool = False) -> list:
    """Table 3 rows D and E (and A with `heads`), each a paired difference with its bootstrap interval."""
    checks = [
        at_least("ppl_log_ratio_ls", 0.0, strict=True, ci="ppl_log_ratio_ls_ci",
                 name="label smoothing raises perplexity: log(PPL_base / PPL_ls0) > 0"),
        at_least("bleu_gain_ls", 0.0, strict=True, ci="bleu_gain_ls_ci",
                 name="label smoothing raises BLEU: BLEU(base) - BLEU(ls0) > 0"),
        at_most("bleu_diff_learned_pe", 1.0, ci="bleu_diff_learned_pe_ci",
                name="learned positions: BLEU(learned) - BLEU(sinusoids) <= +1"),
        at_least("bleu_diff_learned_pe", -1.0, ci="bleu_diff_learned_pe_ci",
                 name="learned positions: BLEU(learned) - BLEU(sinusoids) >= -1"),
    ]
    if heads:
        checks.append(at_least("bleu_gain_heads", 0.0, strict=True, ci="bleu_gain_heads_ci",
                               name="4 heads beat 1 head: BLEU(base) - BLEU(h1) > 0"))
    return checks


_near_convergence = at_least("min_token_acc_of_best", 0.95, name="training is near convergence: every variant's "
                             "test token accuracy is >= 95% of the best possible (the likeliest synonym)")

register(Experiment(
    id="transformer/ablations",
    claim="Table 3: label smoothing raises perplexity and raises BLEU (row D); learned positional embeddings match "
          "sinusoids, within 1 BLEU (row E). Paired variants, near convergence, references with synonyms.",
    paper_value="newstest2013: ε_ls 0: PPL 4.67 / BLEU 25.3 vs ε_ls 0.1: 4.92 / 25.8; learned PE 4.92 / 25.7",
    configs={
        "smoke": AblationConfig(data=TranslationConfig(min_len=5, max_len=10), variants=("base", "ls0"), d_model=32,
                                d_mlp=64, warmup=30, steps=100, corpus=0, n_test=100, n_boot=200),
        "quick": AblationConfig(),
        "full": AblationConfig(data=TranslationConfig(max_len=30, synonym_probs=(0.6, 0.3, 0.1)),
                               variants=("base", "ls0", "learned_pe", "h1"), d_model=128, d_mlp=512, steps=10_000,
                               warmup=1000, corpus=50_000, n_test=2000),
    },
    run=run_ablations,
    checks={
        "smoke": [at_most("ppl_base", "uniform_ppl", margin=0.0, name="the base model beats a uniform guess"),
                  at_most("ppl_ls0", "uniform_ppl", name="the ε_ls = 0 model beats a uniform guess")],
        "quick": _ablation_checks(),
        "full": _ablation_checks(heads=True),
    },
    preconditions={"quick": [_near_convergence], "full": [_near_convergence]},
    headline="bleu_gain_ls",
    full_scale=("Largest faithful scale: the four variants (base, no label smoothing, learned positions, one "
                "head) at d_model 128, 2 layers, 10,000 steps each on a 256-word synonym language with sentences "
                "of 5-30 words; the paper: Table 3's base model (d_model 512, 6 layers) on WMT 2014 English-German, "
                "100K steps per variant on 8 P100 GPUs; why: the paper's variants are GPU-days each here; about 1.7 "
                "CPU-hours here (estimate from quick's CPU time per step)."),
    notes=(
        "Why this design is a fair test. Table 3 compares single runs of the base model (100k steps on WMT'14 "
        "En-De, about 20 passes over the corpus, newstest2013, beam search) that differ in one thing; Section 5.4 "
        "says label smoothing 'hurts perplexity, as the model learns to be more unsure, but improves accuracy and "
        "BLEU score', and row E finds learned positions 'nearly identical' to sinusoids (25.7 vs 25.8). Three "
        "things make that testable here. "
        "(1) Paired variants: every variant starts from the base model's initial weights (where shapes agree), "
        "trains on the same batches in the same order, with the same dropout stream, and is scored on the same "
        "2,000 test sentences; each comparison is a difference with a paired bootstrap interval over them (Koehn "
        "2004), which a check must clear (the power rule: about 2 s.e.); across seeds every seed must pass. "
        "(2) Near convergence, as the paper's 100k-step models were: the precondition is that every variant's test "
        "token accuracy is at least 95% of the best possible. There the perplexity effect is mechanical (an "
        "ε-smoothed optimum spreads 0.1 of the mass over the vocabulary, so its perplexity exceeds the unsmoothed "
        "one's), while mid-training smoothing can lower perplexity by bounding over-confident mistakes; and two "
        "converged models translate alike, so the equivalence of learned positions is a statement about what each "
        "learned, not about how fast. "
        "(3) Something for smoothing to act on: the paper's mechanism (calibration and regularisation against "
        "noisy, multi-modal references and a finite corpus) has nothing to act on in a deterministic task with fresh "
        "data at every step, so each source word has three target synonyms drawn with probabilities 0.6 / 0.3 / 0.1 "
        "(greedy translation into the likeliest synonyms scores only about 28 BLEU against one sampled reference, "
        "far from any ceiling), and training draws from a fixed corpus of 10,000 pairs (about 10 passes at quick; "
        "the paper's, about 20). "
        "The paper's BLEU effect of smoothing is +0.5 (25.3 to 25.8): here greedy decoding of two converged models "
        "picks the same likeliest synonyms, so it may well lie within the test set's noise and is then reported "
        "inconclusive, not passed. Learned positions are tested as an equivalence: the whole interval of the "
        "difference must lie within +-1 BLEU (3.5% of the task's best greedy BLEU; about the resolution of a paired "
        "interval over this test set, and the paper's row E is within 0.1). "
        "What differs from the paper, and why. The model is the base recipe scaled down (post-LN, N=2, d=64, h=4, "
        "d_ff=256, P_drop 0.1, Adam (0.9, 0.98, 1e-9)); the learning rate keeps Eq. 3's shape (linear warmup over "
        "300 steps, then inverse square root) with the peak the paper's base model trained at, 7.0e-4 (Eq. 3 at "
        "d_model 512, warmup 4000), not Eq. 3 at d_model 64: with a warmup scaled to a short run that peaks 12.6x "
        "higher (8.8e-3), where this post-LN model stalls on the plateau (the first design: 3 of its 9 variant runs "
        "stuck at 32-41% of the best accuracy after 1,500 steps; pilots of the base model alone, seed 2, 256 words, "
        "lengths 5-15: 37% after 2,000 steps at 8.8e-3, 95% after 3,200 at 7.0e-4). The quick language is small "
        "(130 source words, sentences of 5-15 words; the same pilot reached 98% of the best accuracy at 3,200 "
        "steps) so that all three variants converge within the 10-minute budget; each trains 3,200 steps of 32 "
        "pairs. Learned positions are parametrised as in the paper's code (tensor2tensor's learned positional "
        "embedding): a table initialised N(0, d^-0.5) and used times √d_model, so it starts at the scale of the "
        "sinusoids it replaces and learns at the token embeddings' rate. Greedy decoding (the paper: beam 4). Full: the first design's 256-word language with lengths 5-30, "
        "a 50,000-pair corpus, d=128 (h=4, d_ff=512, N=2), 10,000 steps per variant (warmup 1,000) and the "
        "one-head row A: about 1.7 CPU-hours for the four variants on one thread. The paper's base (N=6, d=512, 100k "
        "steps of 25k tokens) is some thousand times beyond that, and N=6 at d=128 would leave about 4,000 steps "
        "per variant, too few to converge: the full scale spends the time on convergence, which the claim needs. "
        "History: the first design trained each variant 600 steps from its own initialisation (token accuracy "
        "0.70-0.78), one seed, fresh deterministic pairs, and found smoothing lowering perplexity mid-training. The "
        "second (paired, synonyms, 1,500 steps, 256 words, lengths 5-30, Eq. 3 at d_model 64, peak 8.8e-3) was "
        "inconclusive on all three seeds: no seed trained every variant near convergence (79%, 34%, 32% of the "
        "best accuracy), with stalled variants in seeds 1 and 2 and learned positions 5.9 and 6.8 BLEU behind in "
        "seeds 0 and 1 (a convergence gap, not an equivalence test). Design 3's first probe (learned positions "
        "alone, seed 0, 3,200 steps) reached 93% of the best accuracy, below the precondition: the model's learned "
        "table began at N(0, 0.02), 50x below the tokens' unit scale, and learned at 1/8 of their effective rate; "
        "it now follows tensor2tensor (above), a change made before any variant was compared."
    ),
))

def _saturation_checks(tol: float) -> list:
    """The footnote's argument and its consequence for the typical query at d_k = 512 and along the d_k sweep."""
    return [
        at_most("var_max_rel_err", tol, se="var_max_rel_err_se", name=f"Var(q·k) = d_k within {tol:.0%} at every d_k"),
        at_most("jacobian_median_ratio", 0.1, ci="jacobian_median_ratio_ci",
                name="the median query's unscaled softmax Jacobian <= 0.1 x its scaled one at d_k = 512"),
        at_least("share_vanishing_unscaled", 0.25, ci="share_vanishing_unscaled_ci",
                 name="unscaled, >= 1 query in 4 has a vanishing softmax gradient (||J|| < 1e-3) at d_k = 512"),
        at_most("share_vanishing_scaled_max", 0.01, ci="share_vanishing_scaled_max_ci",
                name="scaled (Eq. 1), <= 1% of queries have a vanishing softmax gradient at every d_k"),
        holds("median_ratio_falls_with_dk", "the median ratio falls at every step of the d_k sweep, each fall "
              "beyond both bootstrap intervals"),
        holds("share_vanishing_rises_with_dk", "the unscaled vanishing share rises at every step of the d_k sweep, "
              "each rise beyond both Wilson intervals"),
        at_least("entropy_scaled", "entropy_unscaled", margin=1.0,
                 name="unscaled attention is far more peaked (entropy lower by >= 1 nat)"),
    ]


register(Experiment(
    id="transformer/scaled-dot-product",
    claim="Section 3.2.1, footnote 4: q·k has variance d_k, so without the 1/sqrt(d_k) scale the softmax saturates "
          "for large d_k and the typical query's gradient vanishes (the median Jacobian, the share of queries with a "
          "vanishing one, and their trend over d_k).",
    paper_value="Var(q·k) = d_k for unit-variance components; 'extremely small gradients' for large d_k",
    configs={
        "smoke": ScaledDotConfig(d_ks=(16, 64, 256, 512), n_samples=5000, n_queries=400, n_boot=300),
        "quick": ScaledDotConfig(),
        "full": ScaledDotConfig(d_ks=(16, 64, 256, 512, 1024, 4096, 16384), n_samples=100_000, n_queries=10_000),
    },
    run=run_scaled_dot,
    checks={
        "smoke": [at_most("var_max_rel_err", 0.08, name="Var(q·k) = d_k within 8% at every d_k"),
                  at_most("jacobian_median_ratio", 0.1, ci="jacobian_median_ratio_ci",
                          name="the median query's unscaled softmax Jacobian <= 0.1 x its scaled one at d_k = 512"),
                  at_least("entropy_scaled", "entropy_unscaled", margin=1.0,
                           name="unscaled attention is far more peaked (entropy lower by >= 1 nat)")],
        "quick": _saturation_checks(0.05),
        "full": _saturation_checks(0.02),
    },
    headline="jacobian_median_ratio",
    full_scale=(
        "The paper's recipe: footnote 4's i.i.d. N(0, 1) components of q and k (it has no experiment), checked at "
        "its d_model 512 with the sweep widened to d_k = 16,384, 100,000 pairs per d_k for the variance and 10,000 "
        "queries for the Jacobians; nothing is trained; about 0.1 CPU-hours here (estimate: quick's 21 CPU-s "
        "scaled by the samples and dimensions, about 19x)."
    ),
    notes=(
        "Why this design is a fair test. Footnote 4 is a conjecture with no experiment: for large d_k 'the dot "
        "products grow large in magnitude, pushing the softmax function into regions where it has extremely small "
        "gradients', illustrated by Var(q·k) = d_k for components of mean 0 and variance 1. Its context (Section "
        "3.2.1) is the finding it explains, from its reference [3] (Britz et al. 2017): 'additive attention "
        "outperforms dot product attention without scaling for larger values of d_k'. The checks sit at d_k = 512 "
        "(the paper's d_model, 8x the base model's d_k = 64; the point planned before the first run), with the "
        "sweep 16-4096 (16-16384 at full) for the trend. What is tested is what the "
        "footnote says about a query: its softmax Jacobian diag(p) - p p^T (the factor backpropagation multiplies "
        "by), per query, unscaled against scaled. Components of q and k are i.i.d. N(0, 1) in float64; 32 keys per "
        "query, a fresh set for each of 2,000 queries per d_k at quick, so the queries are independent samples and "
        "their intervals (bootstrap for the median ratio, Wilson for the shares, a sampling s.e. for the variance) "
        "are honest. Nothing is trained, so there is no precondition to reach: the sampler itself is the footnote's "
        "assumption. "
        "Design history: the first design checked the *mean* Jacobian ratio <= 0.1 at d_k = 512 and failed (0.364). "
        "The mean cannot measure the claim: ||J|| is largest (0.5) at a two-way tie, and unscaled the share of "
        "near-tie queries falls only like d_k^-1/2, so the mean ratio follows d_k^-1/2 (0.45, 0.36, 0.25, 0.13 at "
        "256, 512, 1024, 4096) and reaches 0.1 only near d_k = 7,000 however completely the typical query "
        "saturates (its median ratio is 0.008 at 512 and 2e-8 at 4096). The same planned bound, 0.1, now applies to "
        "the median. The threshold 1e-3 for a 'vanishing' Jacobian (over 200x below the scaled median of about "
        "0.24) and the share of 1 in 4 were set after the first run (which reported 45% at 512) and an audit probe "
        "(47%), so they are validated on fresh seeds: each seed draws new queries and keys. The mean and the 90th "
        "percentile are reported with the figures: near-tie queries keep a larger Jacobian unscaled (the 90th "
        "percentile ratio is above 1 up to d_k ~ 1024). Note too that the gradient with respect to q itself carries "
        "an extra sqrt(d_k) unscaled; the footnote's statement is about the softmax, which is what is checked."
    ),
))

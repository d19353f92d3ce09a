"""Declarations of the attention experiments: Bahdanau et al. 2015 (RNNsearch) and attention as kernel regression.
The runs live in exp_rnnsearch_vs_rnnencdec.py and exp_kernel_regression.py."""

from __future__ import annotations

from dataclasses import replace

from mlreads.attention.exp_kernel_regression import (
    KernelRegressionConfig,
    run_kernel_regression,
)
from mlreads.attention.exp_rnnsearch_vs_rnnencdec import RNNSearchConfig, run_rnnsearch
from mlreads.core.data.translation import TranslationConfig
from mlreads.core.run.registry import Experiment, at_least, at_most, register
from mlreads.core.train import recipe


def _rnnsearch_checks(alignment: float) -> list:
    """Fig 2 and Fig 3, each with its bootstrap interval over the test sentences (thresholds as first registered)."""
    return [
        at_least("long_over_short_rnnsearch", 0.9, ci="long_over_short_rnnsearch_ci",
                 name="RNNsearch BLEU on 41-50 >= 0.9 x its BLEU on <= 20"),
        at_most("long_over_short_rnnencdec", 0.7, ci="long_over_short_rnnencdec_ci",
                name="RNNencdec BLEU on 41-50 <= 0.7 x its BLEU on <= 20"),
        at_least("long_gap", 15, ci="long_gap_ci", name="on 41-50 words RNNsearch leads RNNencdec by >= 15 BLEU"),
        at_least("alignment_accuracy", alignment, ci="alignment_accuracy_ci",
                 name=f"RNNsearch's strongest attention is on the true source word for >= {alignment:.0%} of words"),
    ]


_encdec_learns = at_least("bleu_short_bin_rnnencdec", 30, ci="bleu_short_bin_rnnencdec_ci",
                          name="RNNencdec translates short sentences (BLEU >= 30 on 5-10 words)")

register(Experiment(
    id="attention/rnnsearch-vs-rnnencdec",
    claim="RNNencdec's BLEU falls as sentences grow while RNNsearch's holds (Fig 2); RNNsearch's soft alignment puts "
          "its weight on the source word being translated (Fig 3).",
    paper_value="WMT'14 En-Fr: RNNsearch-50 26.75 vs RNNencdec-50 17.82 BLEU (Table 1); Fig 2: RNNsearch-50 does not "
                "deteriorate up to length 50+",
    configs={
        "smoke": RNNSearchConfig(data=TranslationConfig(min_len=5, max_len=12), d_embed=16, d_hidden=32, d_maxout=16,
                                 d_align=32, train=recipe(120, 5e-3, warmup=10, optimizer="adam"),
                                 bin_edges=(5, 8, 12), n_per_bin=30, n_align=30, n_boot=100),
        "quick": RNNSearchConfig(),
        "full": RNNSearchConfig(d_embed=128, d_hidden=256, d_maxout=128, d_align=256,
                                train=replace(recipe(1_000_000, 1e-3, warmup=500, optimizer="adam",
                                                     schedule="constant", ckpt_every=1000),
                                              time_limit_s=3000.0, clock="cpu"),
                                n_per_bin=1000, n_align=1000),
    },
    run=run_rnnsearch,
    checks={
        "smoke": [at_least("loss_gap", 0.0, name="RNNsearch trains to a lower loss than RNNencdec")],
        "quick": _rnnsearch_checks(0.9),
        "full": _rnnsearch_checks(0.95),
    },
    preconditions={"quick": [_encdec_learns], "full": [_encdec_learns]},
    headline="bleu_long_rnnsearch",
    full_scale=(
        "Largest faithful scale: RNNsearch and RNNencdec with the paper's GRU, alignment model and maxout output at "
        "256 hidden units and 128-d embeddings, each trained for 3000 CPU-seconds on pseudo-French sentences of 5 "
        "to 50 words, tested on 1000 sentences per length bin with greedy decoding; the paper: 1000 hidden units, "
        "620-d embeddings, WMT'14 En-Fr with 30k-word shortlists, about 5 days per model, beam search; why: no "
        "parallel corpus is installable offline, and models of the paper's size train for days; about 1.8 "
        "CPU-hours here (estimate: 2 x 3000 CPU-s of training, 0.6 and 0.25 CPU-s per step measured, plus "
        "decoding)."
    ),
    notes=(
        "Why this design is a fair test. The paper (Section 4-5) trains RNNencdec and RNNsearch on WMT'14 En-Fr "
        "(sentences up to 50 words; 30k-word shortlists; 1000 hidden units; Adadelta, minibatch 80, about 5 days "
        "each) and shows in Fig 2 that both translate short sentences well, after which RNNencdec's BLEU falls with "
        "length while RNNsearch-50's holds to 50+ words. The mechanism is capacity against length: a fixed vector "
        "holds about so many bits, and a sentence of L words carries L log2 V of them. The design puts that "
        "mechanism where a CPU can show it. (1) A 52-word source vocabulary with Zipfian frequencies within each "
        "word class (about 5 bits a word at most): 10 words fit a 64-unit vector, 50 do not; the first design's 250 "
        "uniform words (8 bits a word, no redundancy) left RNNencdec unable to learn even short sentences. (2) "
        "Corpus-like lengths: log-uniform on 5-50, so about 40% of the sentences have at most 12 words and 9% have "
        "41-50, both models on the same stream of batches; every test length lies inside the training "
        "distribution. (3) Equal CPU time (180 s each, one thread), not equal steps, as the paper's models had "
        "comparable training time: RNNencdec's cheaper step buys it more updates. (4) The precondition: RNNencdec "
        "translates short sentences (BLEU >= 30 on 5-10 words, by its interval); only then can its fall with length "
        "be measured. Every check carries a bootstrap interval over the test sentences (200 per length bin; the "
        "gap on 41-50 words is paired, both models on the same sentences). The thresholds are the first design's "
        "(0.9x flat, 0.7x drop, +15 BLEU, 90% alignment), unchanged. "
        "Data: a seeded synthetic 'pseudo-French' (mlreads.core.data.translation): clauses of noun phrases and "
        "verbs, translated word by word through a fixed bijection, with noun phrases reordered the French way "
        "(F A1 A2 N -> F' N' A2' A1'), so the true alignment is known and Fig 3 becomes a number. BLEU is "
        "sacrebleu's corpus BLEU-4 (tokenize='none') with greedy decoding (the paper uses beam 12). Deviations: "
        "Adam at a constant lr instead of Adadelta; sizes far below the paper's 1000 hidden units; no real parallel "
        "corpus is installable offline. RNNsearch may sit near the ceiling on this small vocabulary, so its 'holds' "
        "can pass by saturation; the contrast rests on RNNencdec's fall and the gap on long sentences. History: the "
        "first design (250 uniform words, uniform lengths, 1,000 steps each) left RNNencdec at the grammar-only "
        "loss (3.56 nats, BLEU 0.3-0.45 in every bin), so its 'falls with length' check compared two chance-level "
        "BLEUs; an audit probe on a 52-word vocabulary reached 38.2 BLEU on 5-10 words and 7.9 on 41-50."
    ),
))

register(Experiment(
    id="attention/kernel-regression",
    source="nadaraya-watson",
    claim="Softmax attention with the score -(q-k)^2/(2h^2) is the Nadaraya-Watson estimator; with a "
          "cross-validated bandwidth its error falls as the data grow, and a learned bandwidth lands near it.",
    paper_value="consistency: excess risk O(n^-4/5) for a twice-differentiable f with the optimal bandwidth",
    configs={
        "smoke": KernelRegressionConfig(sizes=(50, 200, 1000), repeats=2, n_grid=25, learn_steps=100),
        "quick": KernelRegressionConfig(),
        "full": KernelRegressionConfig(sizes=(50, 100, 200, 500, 1000, 2000, 5000, 10000), repeats=20),
    },
    run=run_kernel_regression,
    checks={
        "smoke": [at_most("identity_max_err", 1e-12), at_most("log_log_slope", -0.4)],
        "quick": [at_most("identity_max_err", 1e-12), at_most("log_log_slope", -0.6),
                  at_most("bandwidth_ratio", 2.0, name="learned bandwidth within 2x of the cross-validated one")],
        "full": [at_most("identity_max_err", 1e-12), at_most("log_log_slope", -0.6), at_most("bandwidth_ratio", 2.0)],
    },
    headline="log_log_slope",
    full_scale=(
        "The paper's recipe: d2l's toy regression (y = 2 sin x + x^0.8 + noise) with n from 50 to 10,000, 20 data "
        "sets per size, the leave-one-out bandwidth from a 40-point grid, and d2l's learned bandwidth (Nadaraya and "
        "Watson give theory, not a recipe); about 1.0 CPU-hour here (estimate: leave-one-out at n = 5000 measured "
        "at 35 CPU-s, four times that at 10,000; its 10,000 x 10,000 matrices need about 2.5 GB)."
    ),
    notes=(
        "Data: d2l's toy, y = 2 sin x + x^0.8 + N(0, 0.5^2), x ~ U(0, 5). The identity is checked at three bandwidths "
        "in float64. The bandwidth is chosen by leave-one-out cross-validation on a log grid; the excess error is "
        "measured on 500 noiseless queries in [0.25, 4.75] (away from the boundary, where Nadaraya-Watson is biased "
        "at O(h)). Theory: slope -4/5; the check asks for <= -0.6. The parametric version is d2l's one learned "
        "scalar w (h = 1/|w|), trained with Adam on the leave-one-out loss."
    ),
))

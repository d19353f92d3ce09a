"""Declarations of the attention experiments: Bahdanau et al. 2015 (RNNsearch) and attention as kernel regression.
The runs live in exp_rnnsearch_vs_rnnencdec.py and exp_kernel_regression.py."""

from __future__ import annotations

from mlreads.attention.exp_kernel_regression import (
    KernelRegressionConfig,
    run_kernel_regression,
)
from mlreads.attention.exp_rnnsearch_vs_rnnencdec import RNNSearchConfig, run_rnnsearch
from mlreads.core.data.translation import TranslationConfig
from mlreads.core.run.registry import Experiment, at_least, at_most, register
from mlreads.core.train import recipe

register(Experiment(
    id="attention/rnnsearch-vs-rnnencdec",
    claim="RNNencdec's BLEU falls as sentences grow while RNNsearch's holds (Fig 2); RNNsearch's soft alignment puts "
          "its weight on the source word being translated (Fig 3).",
    paper_value="WMT'14 En-Fr: RNNsearch-50 26.75 vs RNNencdec-50 17.82 BLEU (Table 1); Fig 2: RNNsearch-50 does not "
                "deteriorate up to length 50+",
    configs={
        "smoke": RNNSearchConfig(data=TranslationConfig(min_len=5, max_len=12), d_embed=16, d_hidden=32, d_maxout=16,
                                 d_align=32, train=recipe(120, 5e-3, warmup=10, optimizer="adam"),
                                 bin_edges=(5, 8, 12), n_per_bin=30, n_align=30),
        "quick": RNNSearchConfig(),
        "full": RNNSearchConfig(d_embed=128, d_hidden=256, d_maxout=128, d_align=256,
                                train=recipe(20_000, 1e-3, warmup=500, optimizer="adam", ckpt_every=1000),
                                n_per_bin=1000, n_align=1000),
    },
    run=run_rnnsearch,
    checks={
        "smoke": [at_least("loss_gap", 0.0, name="RNNsearch trains to a lower loss than RNNencdec")],
        "quick": [
            at_least("long_over_short_rnnsearch", 0.9, name="RNNsearch BLEU on 41-50 >= 0.9 x its BLEU on <= 20"),
            at_most("long_over_short_rnnencdec", 0.7, name="RNNencdec BLEU on 41-50 <= 0.7 x its BLEU on <= 20"),
            at_least("bleu_long_rnnsearch", "bleu_long_rnnencdec", margin=15),
            at_least("alignment_accuracy", 0.9),
        ],
        "full": [
            at_least("long_over_short_rnnsearch", 0.9),
            at_most("long_over_short_rnnencdec", 0.7),
            at_least("bleu_long_rnnsearch", "bleu_long_rnnencdec", margin=15),
            at_least("alignment_accuracy", 0.95),
        ],
    },
    headline="bleu_long_rnnsearch",
    notes=(
        "Data: a seeded synthetic 'pseudo-French' (mlreads.core.data.translation): clauses of noun phrases and verbs "
        "with a 250-word source vocabulary, translated word by word through a fixed bijection, with noun phrases "
        "reordered the French way (F A1 A2 N -> F' N' A2' A1'), so the true alignment is known and Fig 3 becomes a "
        "number. Both models are trained on lengths 5-50 on the same batches for the same number of steps; BLEU is "
        "sacrebleu's corpus BLEU-4 (tokenize='none') with greedy decoding (the paper uses beam 12). Deviations: "
        "Adam instead of Adadelta; sizes far below the paper's 1000 hidden units; the quick thresholds were set "
        "before the first quick run from our first proposal (0.9x flat, 0.7x drop, +15 BLEU, 90% alignment)."
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
    notes=(
        "Data: d2l's toy, y = 2 sin x + x^0.8 + N(0, 0.5^2), x ~ U(0, 5). The identity is checked at three bandwidths "
        "in float64. The bandwidth is chosen by leave-one-out cross-validation on a log grid; the excess error is "
        "measured on 500 noiseless queries in [0.25, 4.75] (away from the boundary, where Nadaraya-Watson is biased "
        "at O(h)). Theory: slope -4/5; the check asks for <= -0.6. The parametric version is d2l's one learned "
        "scalar w (h = 1/|w|), trained with Adam on the leave-one-out loss."
    ),
))

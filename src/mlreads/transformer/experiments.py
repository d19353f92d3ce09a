"""Declarations of the encoder-decoder Transformer experiments (Vaswani et al. 2017). The runs live in
exp_seq2seq.py, exp_ablations.py and exp_scaled_dot_product.py."""

from __future__ import annotations

from mlreads.core.data.translation import TranslationConfig
from mlreads.core.run.registry import Experiment, at_least, at_most, register
from mlreads.transformer.exp_ablations import AblationConfig, run_ablations
from mlreads.transformer.exp_scaled_dot_product import ScaledDotConfig, run_scaled_dot
from mlreads.transformer.exp_seq2seq import Seq2SeqConfig, run_seq2seq

register(Experiment(
    id="transformer/seq2seq",
    claim="The Transformer translates better than recurrent attention at a fraction of the training cost (Table 2), "
          "here: at least RNNsearch's BLEU at equal training time on the pseudo-French task.",
    paper_value="WMT'14 En-De 27.3 / En-Fr 38.1 BLEU (base) at 3.3e18 FLOPs, above every recurrent model in Table 2",
    configs={
        "smoke": Seq2SeqConfig(data=TranslationConfig(task="copy", n_adjectives=10, n_nouns=20, n_verbs=10,
                                                      min_len=5, max_len=10),
                               d_model=32, n_heads=4, d_mlp=64, dropout=0.0, warmup=100, steps=250, time_s=60.0,
                               eval_every=150, n_dev=20, n_test=100, compare=False),
        "quick": Seq2SeqConfig(),
        "full": Seq2SeqConfig(d_model=256, n_heads=8, d_mlp=1024, n_layers=6, time_s=3600.0, eval_every=500,
                              n_dev=300, n_test=2000),
    },
    run=run_seq2seq,
    checks={
        "smoke": [at_least("token_acc_transformer", 0.9, name="the copy task: next-token accuracy >= 0.9")],
        "quick": [at_least("bleu_transformer", "bleu_rnnsearch", name="BLEU(Transformer) >= BLEU(RNNsearch), equal CPU time"),
                  at_most("time_ratio_to_rnnsearch_final", 0.5,
                          name="the Transformer reaches RNNsearch's final dev BLEU in <= half its time")],
        "full": [at_least("bleu_transformer", "bleu_rnnsearch"), at_most("time_ratio_to_rnnsearch_final", 0.5)],
    },
    headline="bleu_transformer",
    notes=(
        "Both models train for the same CPU time on one thread (200 s each at quick; CPU time, not wall time, so that "
        "other processes on a shared machine do not decide the comparison), on the same batches of the "
        "pseudo-French task (see attention/rnnsearch-vs-rnnencdec), and are tested with greedy decoding on 500 "
        "held-out sentences of 5-50 words. The Transformer is the paper's base recipe scaled down (post-LN, N=2, "
        "d=64, h=4, d_ff=256, P_drop 0.1, ε_ls 0.1, Adam (0.9, 0.98, 1e-9) with Eq. 3 and warmup 400). Caution: on "
        "one CPU thread a Transformer step costs about as much as an attention-RNN step; the paper's training-cost "
        "advantage comes from parallelism across positions on GPUs. The smoke budget is the copy task, a pipeline "
        "check only."
    ),
))

register(Experiment(
    id="transformer/ablations",
    claim="Table 3: label smoothing hurts perplexity but helps BLEU (row D); learned positional embeddings do about "
          "as well as sinusoids (row E).",
    paper_value="newstest2013: ε_ls 0: PPL 4.67 / BLEU 25.3 vs ε_ls 0.1: 4.92 / 25.8; learned PE 4.92 / 25.7",
    configs={
        "smoke": AblationConfig(data=TranslationConfig(min_len=5, max_len=10), variants=("base", "ls0"), d_model=32,
                                d_mlp=64, warmup=30, steps=100, n_test=100),
        "quick": AblationConfig(),
        "full": AblationConfig(data=TranslationConfig(), variants=("base", "ls0", "learned_pe", "h1"), d_model=128,
                               d_mlp=512, steps=8000, warmup=800, n_test=1000),
    },
    run=run_ablations,
    checks={
        "smoke": [at_most("ppl_base", "uniform_ppl", margin=0.0, name="the base model beats a uniform guess"),
                  at_most("ppl_ls0", "uniform_ppl", name="the ε_ls = 0 model beats a uniform guess")],
        "quick": [at_most("ppl_ls0", "ppl_base", name="label smoothing raises perplexity"),
                  at_least("bleu_base", "bleu_ls0", name="label smoothing raises BLEU"),
                  at_most("bleu_gap_learned_pe", 1.0, name="|BLEU(learned PE) - BLEU(sinusoids)| <= 1")],
        "full": [at_most("ppl_ls0", "ppl_base"), at_least("bleu_base", "bleu_ls0"), at_most("bleu_gap_learned_pe", 1.0),
                 at_least("bleu_base", "bleu_h1", name="4 heads beat 1 head")],
    },
    headline="bleu_base",
    notes=(
        "Variants train for the same steps on the same batches (lengths 5-30 at quick); perplexity is of the "
        "unsmoothed model distribution on held-out pairs (teacher forcing), BLEU is greedy. At this scale BLEU "
        "differences of a point can be seed noise: the report should be read with that in mind."
    ),
))

register(Experiment(
    id="transformer/scaled-dot-product",
    claim="Section 3.2.1, footnote 4: q·k has variance d_k, so without the 1/sqrt(d_k) scale the softmax saturates "
          "and its gradient vanishes.",
    paper_value="Var(q·k) = d_k for unit-variance components; 'extremely small gradients' for large d_k",
    configs={
        "smoke": ScaledDotConfig(n_samples=5000, n_queries=64),
        "quick": ScaledDotConfig(),
        "full": ScaledDotConfig(d_ks=(16, 64, 256, 1024, 4096), n_samples=100_000),
    },
    run=run_scaled_dot,
    checks={
        "smoke": [at_most("var_max_rel_err", 0.08, name="Var(q·k) = d_k within 8% at every d_k"),
                  at_least("entropy_scaled", "entropy_unscaled", margin=1.0,
                           name="unscaled attention is far more peaked (entropy lower by >= 1 nat)")],
        **{budget: [at_most("var_max_rel_err", tol, name=f"Var(q·k) = d_k within {tol:.0%} at every d_k"),
                    at_most("jacobian_ratio_unscaled_over_scaled", 0.1,
                            name="mean unscaled softmax Jacobian <= 0.1 x the scaled one at d_k = 512"),
                    at_least("entropy_scaled", "entropy_unscaled", margin=1.0,
                             name="unscaled attention is far more peaked (entropy lower by >= 1 nat)")]
           for budget, tol in (("quick", 0.05), ("full", 0.02))},
    },
    headline="jacobian_ratio_unscaled_over_scaled",
    notes=(
        "Components of q and k are i.i.d. N(0, 1) in float64; 32 keys, 256 queries at d_k = 512. The Jacobian of the "
        "softmax is diag(p) - p p^T; its Frobenius norm is 0 for a one-hot p, about 1/sqrt(n) for a uniform p, and "
        "largest (0.5) for a two-way tie. So a saturated softmax has a vanishing Jacobian only away from near-ties: "
        "the mean over queries is dominated by the few queries whose top two logits are close, while the median "
        "and the share of queries with a norm below 1e-3 show the typical query. The check uses the mean, as "
        "planned before the first run; the median and the vanishing share are reported beside it."
    ),
))

"""Experiments of the Deep Learning review (LeCun, Bengio & Hinton 2015, Nature 521:436-444)."""

from __future__ import annotations

from dataclasses import replace

from mlreads.core.run.registry import Experiment, at_least, at_most, holds, register
from mlreads.dl_review.exp_local_minima import LocalMinimaConfig, run_local_minima
from mlreads.dl_review.exp_separability import SeparabilityConfig, run_separability

_sep = SeparabilityConfig()
# full is quick's run (seconds), with the checkpoint cadence every full config carries
_sep_full = replace(_sep, train=replace(_sep.train, ckpt_every=750), linear=replace(_sep.linear, ckpt_every=250))
register(
    Experiment(
        id="dl-review/separability",
        claim="Fig 1a: a 2-2-1 net distorts the input space until the classes are linearly separable.",
        paper_value="an illustration (no number): two curves separated by a line after the hidden layer",
        configs={"smoke": _sep, "quick": _sep, "full": _sep_full},
        run=run_separability,
        checks={b: [at_most("linear_acc", 0.90), at_least("n_separated", 8),
                    at_least("hidden_linear_acc", 0.995)] for b in ("smoke", "quick", "full")},
        headline="n_separated",
        full_scale=(
            "The paper's recipe: Fig 1a is an illustration with no training recipe; its 2-2-1 tanh net is trained "
            "here to convergence (ten students, full-batch Adam on 1000 points), which quick already does, so full "
            "repeats quick's run; about 0.002 CPU-hours here (quick's measured 5 CPU-s)."
        ),
        notes=(
            "Data: points uniform on [-2, 2]^2 labelled by a fixed 2-2-1 tanh teacher whose positive class is a bent "
            "band (two edges, so no line separates it). Ten 2-2-1 tanh students (full-batch Adam, logistic loss) "
            "and the best line (logistic regression) are trained; a student 'separates' at >= 99.5% training "
            "accuracy. Its output unit is linear in the two hidden units, so the classes are then split by a line "
            "in hidden space; hidden_linear_acc re-fits a line there as a cross-check. The figure re-draws Fig 1a: "
            "the input grid warped by the best student's hidden layer."
        ),
    )
)

_lm_quick = LocalMinimaConfig()
register(
    Experiment(
        id="dl-review/local-minima",
        claim=("p. 438: with large networks, poor local minima are rarely a problem: runs from different "
               "initialisations reach solutions of very similar quality."),
        paper_value="no number; Choromanska et al. 2015 Fig: loss distributions concentrate as the hidden layer grows",
        configs={
            "smoke": replace(_lm_quick, widths=(4, 64), n_seeds=5, n_train=1000, n_test=1000, epochs=10,
                             spread_width=4),
            "quick": _lm_quick,
            "full": replace(_lm_quick, widths=(4, 16, 64, 256, 1024), n_seeds=50, n_train=50000, n_test=10000,
                            ckpt_every=1000),  # 2 of 20 epochs
        },
        run=run_local_minima,
        checks={
            "smoke": [at_most("std_widest", "std_narrow", name="std(64) < std(4)")],
            "quick": [at_most("std_ratio", 0.25, name="std(256) <= 0.25 std(16)"), at_most("worst_gap_widest", 0.02)],
            "full": [at_most("std_ratio", 0.25, name="std(1024) <= 0.25 std(16)"), at_most("worst_gap_widest", 0.02),
                     holds("std_falls_with_width", "the across-seed std of the training loss falls with every width")],
        },
        requires=("mnist",),
        headline="std_ratio",
        full_scale=(
            "The paper's recipe: none (p. 438 states it, citing Choromanska et al. 2015, whose MNIST nets of growing "
            "width this follows): one-hidden-layer ReLU MLPs of widths 4 to 1024, 50 initialisations each, on the "
            "50k training set for 20 epochs of SGD with momentum; about 1.5 CPU-hours here (estimate: 0.38 CPU-s per "
            "step of the width-1024 batch measured, 0.14 for the other widths together)."
        ),
        notes=(
            "One-hidden-layer ReLU MLPs, 10 seeds per width, trained as one batched model on the same minibatches "
            "(SGD, momentum 0.9), so seeds differ only in their initialisation. The spread is the across-seed "
            "standard deviation of the final training loss on the training subset. Thresholds (0.25x, 0.02 nats) "
            "are our first guesses, kept as written before the quick run."
        ),
    )
)

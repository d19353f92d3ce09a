"""Experiments of Dropout (Srivastava, Hinton, Krizhevsky, Sutskever & Salakhutdinov 2014, JMLR 15:1929-1958)."""

from __future__ import annotations

from dataclasses import replace

from mlreads.core.run.registry import Experiment, at_least, at_most, holds, register
from mlreads.dropout.exp_mc_vs_weight_scaling import MCConfig, run_mc
from mlreads.dropout.exp_mnist import DropoutMNISTConfig, run_mnist
from mlreads.dropout.exp_sparsity import SparsityConfig, run_sparsity

_mnist = DropoutMNISTConfig()
register(
    Experiment(
        id="dropout/mnist",
        claim="Table 2 / Fig 4: dropout (with max-norm) lowers MNIST test error and shrinks the train-test gap.",
        paper_value="Table 2: 3x1024 ReLU 1.25% with dropout, 1.06% + max-norm; standard nets 1.60% (2x800)",
        configs={
            "smoke": replace(_mnist, n_train=2000, n_test=2000, d_hidden=(256, 256), epochs=15, eval_n=2000),
            "quick": _mnist,
            "full": replace(_mnist, n_train=50_000, d_hidden=(1024, 1024, 1024), epochs=300),
        },
        run=run_mnist,
        checks={
            "smoke": [at_most("gap_dropout", "gap_none", name="gap(dropout) < gap(none)")],
            "quick": [at_least("err_gain", 0.3, name="err(dropout) <= err(none) - 0.3 pp"),
                      at_most("gap_ratio", 0.5, name="gap(dropout) <= gap(none) / 2")],
            "full": [at_most("err_dropout", 1.25), at_least("err_none", 1.4)],
        },
        requires=("mnist",),
        headline="err_gain",
        notes=(
            "Two arms on the same minibatches and the same init seed: a ReLU MLP without dropout, and with dropout "
            "(retention 0.8 on inputs, 0.5 on hidden units, the paper's convention: unscaled masks in training, "
            "weights scaled by p at test time) plus max-norm c = 3 on each unit's incoming weights. SGD with "
            "momentum 0.9, lr 0.1 cosine to 0, batch 128, minibatches drawn with replacement. Errors in percent "
            "on the full 10k test set. The 0.3 pp margin is our first guess, fixed before the quick run."
        ),
    )
)

_mc = MCConfig()
register(
    Experiment(
        id="dropout/mc-vs-weight-scaling",
        claim="Fig 11 (Section 7.5): weight scaling matches Monte-Carlo averaging over about 50 sampled thinned nets.",
        paper_value="Fig 11: the MC error falls with k and reaches the weight-scaling error at k ~ 50",
        configs={
            "smoke": replace(_mc, n_train=2000, n_test=1000, d_hidden=(256, 256), epochs=10, ks=(1, 2, 5, 10, 20, 50),
                             repeats=3, tol_floor=0.5),
            "quick": _mc,
            "full": replace(_mc, n_train=50_000, d_hidden=(1024, 1024, 1024), epochs=100, repeats=10),
        },
        run=run_mc,
        checks={b: [at_least("gap_k1", 0.3, name="err(k=1) >= err(weight scaling) + 0.3 pp"),
                    at_most("gap_k50", "tol_k50", name="|err(k=50) - err(ws)| <= max(tol_floor, 1 s.d.)")]
                for b in ("smoke", "quick", "full")},
        requires=("mnist",),
        headline="gap_k50",
        notes=(
            "The dropout net of dropout/mnist (retention 0.8/0.5, max-norm 3), trained afresh. MC averaging: the "
            "softmax outputs of k nets with freshly sampled masks (drawn from the run's 'mc' generator) are "
            "averaged; each repeat draws one stream of 100 nets and reads the running average at every k. The k=50 "
            "tolerance is max(0.1 pp, 1 s.d.) at quick and full; the smoke run has only 1000 test images (0.1 pp is "
            "one image), so its floor is 0.5 pp (five images)."
        ),
    )
)

_sp = SparsityConfig()
register(
    Experiment(
        id="dropout/sparsity",
        claim="Fig 8 (Section 7.2): dropout on an autoencoder's 256 ReLU units makes its activations sparse.",
        paper_value="Fig 8: mean activation about 2.0 without dropout vs 0.7 with it; histogram peaks at zero",
        configs={"smoke": replace(_sp, n_train=5000, n_test=2000, epochs=4), "quick": _sp,
                 "full": replace(_sp, epochs=100)},
        run=run_sparsity,
        checks={b: [at_least("act_ratio", 2.0, name="mean activation: none / dropout >= 2"),
                    holds("sparser_with_dropout", "a larger share of exact zeros with dropout")]
                for b in ("smoke", "quick", "full")},
        requires=("mnist",),
        headline="act_ratio",
        notes=(
            "Autoencoder 784-256(ReLU)-784 (linear decoder), squared error summed over pixels, Adam lr 3e-3 cosine "
            "to 0, both arms "
            "from the same initial weights and batches. Dropout with retention 0.5 on the hidden units; activations "
            "are measured before dropout on the test images with the deterministic net."
        ),
    )
)

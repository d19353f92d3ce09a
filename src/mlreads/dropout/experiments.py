"""Experiments of Dropout (Srivastava, Hinton, Krizhevsky, Sutskever & Salakhutdinov 2014, JMLR 15:1929-1958)."""

from __future__ import annotations

from dataclasses import replace

from mlreads.core.run.registry import Experiment, at_least, at_most, holds, register
from mlreads.core.run.verdict import ALL_SEEDS
from mlreads.dropout.exp_mc_vs_weight_scaling import MCConfig, run_mc
from mlreads.dropout.exp_mnist import DropoutMNISTConfig, run_mnist
from mlreads.dropout.exp_sparsity import SparsityConfig, run_sparsity

_mnist = DropoutMNISTConfig()
# Table 2's own effect: 1.60% (standard net) -> 1.06% (dropout + max-norm), a ratio of 0.66; a standard net's
# training error is ~0, so its gap is its test error, and a dropout net's gap is at most its test error
_GAP = at_most("gap_ratio", 0.66, se="gap_ratio_se", name="gap(dropout) <= 0.66 gap(none) (Table 2: 1.06 / 1.60)")
_GAIN = at_least("err_gain", 0.3, se="err_gain_se", name="err(dropout) <= err(none) - 0.3 pp")
register(
    Experiment(
        id="dropout/mnist",
        claim="Table 2 / Fig 4: dropout (with max-norm) lowers MNIST test error and shrinks the train-test gap.",
        paper_value="Table 2: 3x1024 ReLU 1.25% with dropout, 1.06% + max-norm; standard nets 1.60% (2x800)",
        configs={
            "smoke": replace(_mnist, n_train=2000, n_test=2000, d_hidden=(256, 256), epochs=15, eval_n=2000),
            "quick": _mnist,
            # 117k steps per arm at 0.03 CPU-s: a checkpoint every 12,000 steps is ~7 minutes
            "full": replace(_mnist, n_train=50_000, d_hidden=(1024, 1024, 1024), epochs=300,
                            train=replace(_mnist.train, ckpt_every=12_000)),
        },
        run=run_mnist,
        checks={
            "smoke": [at_most("gap_dropout", "gap_none", name="gap(dropout) < gap(none)")],
            "quick": [_GAIN, _GAP],
            "full": [at_most("err_dropout", 1.25, ci="err_dropout_ci"), at_least("err_none", 1.4, ci="err_none_ci")],
        },
        seed_rule=ALL_SEEDS,
        requires=("mnist",),
        headline="err_gain",
        full_scale=(
            "The paper's recipe: Table 2's 784-1024-1024-1024-10 ReLU net with dropout (retention 0.8 / 0.5) and "
            "max-norm 3 against the same net without, SGD with momentum, trained 300 epochs on the 50k training "
            "images (the paper trains for a long time on 60k); about 2.3 CPU-hours here (estimate: 0.03 CPU-s per "
            "step measured, 117k steps per arm)."
        ),
        notes=(
            "Two arms on the same minibatches and the same init seed: a ReLU MLP without dropout, and with dropout "
            "(retention 0.8 on inputs, 0.5 on hidden units, the paper's convention: unscaled masks in training, "
            "weights scaled by p at test time) plus max-norm c = 3 on each unit's incoming weights. SGD with "
            "momentum 0.9, lr 0.1 cosine to 0, batch 128, minibatches drawn with replacement. Errors in percent "
            "on the full 10k test set. Why the design is fair: the paper (Table 2; Section 6.1.1) trains "
            "784-(800-8192)x2-3-10 nets on the full 60k for a long time and reports 1.60% without dropout against "
            "1.06% with dropout and max-norm; the gap threshold is that ratio, 0.66 (a standard net's training "
            "error is ~0, so its gap is its test error; a dropout net's gap is at most its test error), not a "
            "guess: an earlier design demanded 0.5, beyond the paper's own effect. Quick keeps a 10k subset and "
            "2x512, where Fig 10 (data-set size) shows dropout's largest gains, and trains 200 epochs, 4x the old "
            "50: Section 9 says a dropout net 'typically takes 2-3 times longer to train', and the no-dropout arm "
            "fits its 10k images within 50. Noise: both arms see the same test images, so the gain's s.e. is that "
            "of the per-image differences, and the gap ratio's is the delta method over the test and training "
            "images; each check passes or fails only by 2 s.e. Seeds: every seed must pass. The 0.3 pp gain "
            "margin was fixed before the first quick run and is unchanged. Full: the paper's 3x1024 on 50k for "
            "300 epochs (about 2.3 CPU-hours), against Table 2's numbers with Wilson intervals."
        ),
    )
)

_mc = MCConfig()
_K1 = at_least("gap_k1", 0.3, se="gap_k1_se", name="err(k=1) >= err(weight scaling) + 0.3 pp")
# "matches": the mean difference at k = 50 inside +- the tolerance, both ends by 2 s.e. (an equivalence test)
_K50 = [at_most("diff_k50", "tol_k50", se="diff_k50_se", name="err(k=50) - err(ws) <= max(0.1 pp, 1 s.d.)"),
        at_least("diff_k50", "neg_tol_k50", se="diff_k50_se", name="err(k=50) - err(ws) >= -max(0.1 pp, 1 s.d.)")]
register(
    Experiment(
        id="dropout/mc-vs-weight-scaling",
        claim="Fig 11 (Section 7.5): weight scaling matches Monte-Carlo averaging over about 50 sampled thinned nets.",
        paper_value="Fig 11: the MC error falls with k and reaches the weight-scaling error at k ~ 50",
        configs={
            "smoke": replace(_mc, n_train=2000, n_test=1000, d_hidden=(256, 256), epochs=10, ks=(1, 2, 5, 10, 20, 50),
                             n_nets=2, repeats=2, tol_floor=0.5),
            "quick": _mc,
            "full": replace(_mc, d_hidden=(1024, 1024, 1024), epochs=100, repeats=4,
                            train=replace(_mc.train, ckpt_every=12_000)),  # ~7 minutes at 0.03 CPU-s a step
        },
        run=run_mc,
        checks={
            # smoke: two small nets on 1000 test images; the pipeline is checked without the s.e. (two nets)
            "smoke": [at_least("gap_k1", 0.3), at_most("diff_k50", "tol_k50"), at_least("diff_k50", "neg_tol_k50")],
            "quick": [_K1, *_K50],
            "full": [_K1, *_K50],
        },
        seed_rule=ALL_SEEDS,
        requires=("mnist",),
        headline="diff_k50",
        full_scale=(
            "Largest faithful scale: three 784-1024-1024-1024-10 dropout nets (max-norm 3) trained 100 epochs on "
            "the 50k training images, each averaged over k = 1 to 100 sampled thinned nets in 4 repeats; the paper: "
            "one large dropout net trained on full MNIST to about 1.1% error; why: three nets, so that the "
            "difference from weight scaling is tested against net-to-net noise, at about 0.4 CPU-hours each; about "
            "1.6 CPU-hours here (estimate: 0.03 CPU-s per training step measured, plus 1,200 Monte-Carlo passes)."
        ),
        notes=(
            "The dropout net of dropout/mnist (2x512, retention 0.8/0.5, max-norm 3, SGD momentum 0.9, lr 0.1 "
            "cosine), trained on the first 50k training images for 15 epochs, three nets per run (each its own "
            "init, batches and masks). MC averaging: the softmax outputs of k nets with freshly sampled masks are "
            "averaged; each repeat draws one stream of 100 nets and reads the running average at every k; all "
            "errors on the full 10k test set. Why the design is fair: the paper (Section 7.5, Fig 11) uses a large "
            "dropout net trained on full MNIST (about 1.1% error) and says that around k = 50 Monte-Carlo "
            "averaging becomes as good as weight scaling, 'well within one standard deviation'. We train on the "
            "full training set as it does and keep its criterion, |err(k=50) - err(ws)| <= max(0.1 pp, 1 s.d. of "
            "the Monte-Carlo error), the floor fixed before the first run and unchanged. An earlier design used "
            "one net on 10k images (3.8% error) for 30 epochs, where the floor was 3x stricter relative to the "
            "error and one net could not separate a property of dropout from one of that net. Noise (decided "
            "inside one run, not by the seed rule): the difference between weight scaling and the Monte-Carlo "
            "limit varies between trained nets, so each run trains three and tests the mean difference over them "
            "with its standard error over nets (net-to-net, test-set and Monte-Carlo noise together); the check "
            "is an equivalence test, passing only when the whole interval lies inside +- the tolerance, which the "
            "seed rule cannot express (it bounds one side). Seeds: every seed must pass. Power: a true "
            "difference near 0 passes only when the nets agree to a few hundredths of a point, one beyond the "
            "tolerance fails, closer is inconclusive. Deviation: 2x512 for 15 epochs, not the paper's large net "
            "trained to convergence (the quick budget: three nets plus 200 Monte-Carlo passes each); full trains "
            "three 3x1024 nets for 100 epochs with 4 repeats (about 2 CPU-hours)."
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
                 "full": replace(_sp, epochs=100, train=replace(_sp.train, ckpt_every=20_000))},
        run=run_sparsity,
        checks={"smoke": [at_least("act_ratio", 1.0, name="mean activation lower with dropout (pipeline)"),
                          holds("sparser_with_dropout", "a larger share of exact zeros with dropout")],
                **{b: [at_least("act_ratio", 2.0, ci="act_ratio_ci", name="mean activation: none / dropout >= 2"),
                       holds("sparser_with_dropout", "a larger share of exact zeros with dropout")]
                   for b in ("quick", "full")}},
        preconditions={b: [at_least("alive_frac_none", 0.9, name="without dropout, >= 90% of units alive"),
                           at_least("alive_frac_dropout", 0.9, name="with dropout, >= 90% of units alive")]
                       for b in ("quick", "full")},
        requires=("mnist",),
        headline="act_ratio",
        full_scale=(
            "The paper's recipe: Fig 8's autoencoder, 784-256-784 with ReLU hidden units, with and without dropout "
            "(retention 0.5) on MNIST, trained 100 epochs with Adam (our choices of length and optimiser); about 0.15 "
            "CPU-hours here (estimate: 0.0064 CPU-s per step measured, 39k steps per arm)."
        ),
        notes=(
            "Autoencoder 784-256(ReLU)-784 (linear decoder), squared error summed over pixels, Adam lr 3e-4 cosine "
            "to 0, both arms "
            "from the same initial weights and batches. Dropout with retention 0.5 on the hidden units; activations "
            "are measured before dropout on the test images with the deterministic net. Why the design is fair: "
            "Fig 8 compares two trained autoencoders whose units work: the mean activation of about 2.0 without "
            "dropout is an average over units that fire, and the sparsity the paper describes (Section 7.2) is few "
            "units highly active for any one image, each unit's mean low, not units that never fire. A ReLU unit "
            "that dies in training (zero on every image) adds zeros that measure the optimiser, not dropout: in the "
            "first design's full run (100 epochs of Adam at lr 3e-3) 134 of 256 units died without dropout and 114 "
            "with it, and the ratio read 1.42; at quick, half of the plain net's units were dead too. So the "
            "learning rate is chosen, before any run of this design and on the plain net alone (the ratio unread), "
            "as the largest of {3e-3, 1e-3, 3e-4, 1e-4} that keeps at least 90% of its units alive over the full "
            "budget's 100 epochs: 3e-4 (benchmarks/dropout_sparsity_lr_pilot.py: 48%, 79%, 100%, 100% alive after "
            "10 epochs; 100% after 100 at 3e-4); each arm must keep at least 90% of its units alive on the test "
            "images (a precondition: otherwise the run is inconclusive, not a fail), and the ratio is tested with "
            "its interval over the 10k test images (a bootstrap of the paired per-image means) rather than as one "
            "number; the bound stays 2 (the paper's 2.0 / 0.7 is about 2.9). Every seed must pass."
        ),
    )
)

"""Experiments for AlexNet (Krizhevsky et al. 2012) and ResNet (He et al. 2016): declarations only.

Deviations (all budgets; each experiment's notes add its own): Fashion-MNIST (28x28 grey, Debian package) stands in
for ImageNet and CIFAR-10, which are not available offline; smoke budgets run on MNIST so the test suite does not need
apt. Nets are width-scaled and trained for minutes, not days.
"""

from __future__ import annotations

import dataclasses

from mlreads.core.run.registry import Experiment, at_least, at_most, holds, register
from mlreads.core.run.verdict import ALL_SEEDS
from mlreads.core.train import recipe
from mlreads.vision.exp_alexnet_feature_neighbours import (
    NeighboursConfig,
    run_feature_neighbours,
)
from mlreads.vision.exp_alexnet_relu_vs_tanh import (
    CLAIM_SPEEDUP,
    ReluTanhConfig,
    run_relu_vs_tanh,
)
from mlreads.vision.exp_resnet_degradation import DegradationConfig, run_degradation


def _sgd(steps, lr, eval_every, warmup=0, wd=0.0, schedule="constant", time_limit_s=None, clip=None):
    cfg = recipe(steps, lr, warmup=warmup, min_lr_frac=0.1, weight_decay=wd, optimizer="sgd", betas=(0.9, 0.999),
                 grad_clip=clip, schedule=schedule, eval_every=eval_every)  # fmt: skip
    return dataclasses.replace(cfg, time_limit_s=time_limit_s)


# ===== alexnet/relu-vs-tanh ===========================================================================================

RELU_TANH = {
    "smoke": ReluTanhConfig(dataset="mnist", n_train=5000, target_err=0.30, batch_size=32, n_train_eval=500,
                            lr_grid=(0.005, 0.01), max_extend=1, max_net_steps=2000, n_boot=100,
                            train=_sgd(200, 0.01, 20)),
    "quick": ReluTanhConfig(),
    "full": ReluTanhConfig(n_train=0, widths=(32, 32, 64), n_train_eval=5000, max_net_steps=110_000,
                           train=_sgd(15_000, 0.01, 250)),
}  # fmt: skip

_SPEEDUP = at_least("min_speedup", CLAIM_SPEEDUP, ci="min_speedup_ci",
                    name=f"speedup >= {CLAIM_SPEEDUP:g} (several times; paper 6), each net at its fastest rate")
register(Experiment(
    id="alexnet/relu-vs-tanh",
    claim="A four-layer CNN with ReLUs reaches a target training error several times faster than with tanh (Fig 1).",
    paper_value="Fig 1: 25% training error on CIFAR-10 six times faster with ReLU (about 5 vs 35 epochs)",
    configs=RELU_TANH,
    run=run_relu_vs_tanh,
    checks={
        "smoke": [holds("relu_reached", "the ReLU net reaches 30% training error within 200 steps (5k MNIST)"),
                  holds("tanh_reached", "the tanh net reaches it within 4x ReLU's steps")],
        "quick": [_SPEEDUP],
        "full": [_SPEEDUP],
    },
    # Without a ReLU crossing there is no speedup (the budget was once counted as a crossing and published as
    # "speedup 0.667"); a tanh cap that the run's step budget cut below 3x ReLU's steps cannot show the claim either.
    preconditions={b: [holds("relu_reached", "the ReLU net reached the target training error at some rate"),
                       holds("tanh_decided", f"tanh reached the target, or was raced for at least "
                                             f"{CLAIM_SPEEDUP:g}x ReLU's steps without reaching it")]
                   for b in ("quick", "full")},
    seed_rule=ALL_SEEDS,
    headline="min_speedup",
    full_scale=("Largest faithful scale: the same race on the whole 60k Fashion-MNIST training split with wider nets "
                "(32, 32, 64 filters, as cuda-convnet's CIFAR-10 net), ReLU up to 15,000 steps per rate and tanh up "
                "to 4x ReLU's steps to E*; the paper: CIFAR-10 (32x32 colour) with cuda-convnet's four-layer net on "
                "a GPU, to 25% training error; why: CIFAR-10 is not installable offline (docs/data.md) and the "
                "rate search multiplies the steps; about 2 CPU-hours here (estimate from quick's 13.5 and 17 ms "
                "per ReLU and tanh step, doubled for the width). Not resumable yet: its race keeps its "
                "evaluations outside fit, so a resumed run would lose them (no checkpoints are written)."),
    notes=("cuda-convnet-style net: conv5x5(16) - maxpool 3/2 - conv5x5(16) - maxpool 3/2 - conv5x5(32) - maxpool "
           "3/2 - fc10, no normalisation or regularisation, batch 64, on the whole 50k Fashion-MNIST training split "
           "(design 5). Why the design is fair: Fig 1 trains the same net with each activation on CIFAR-10's "
           "training set, each at a learning rate 'chosen independently to make training as fast as possible', with "
           "plain SGD and momentum, on mean-subtracted inputs, and compares the epochs each takes to reach 25% "
           "training error, far below what a linear classifier reaches there. So: inputs standardised (mean image "
           "subtracted, pixel s.d. divided); the convolutions with each activation's usual init (He for ReLU, Glorot "
           "for tanh), and the output layer from N(0, 0.01) in both nets (and in the softmax regression), the "
           "paper's own init for every layer (Section 5), so that both nets start near chance as the paper's "
           "small-Gaussian nets do (initial loss 2.3 for both); SGD momentum 0.9 at a constant rate, no clipping or "
           "warmup. The target E* is fixed before any net trains: a softmax regression is trained on the same "
           "batches for ReLU's whole budget (3000 steps) at each rate raced, and E* = its lowest final training "
           "error minus 5 pp, so crossing E* within the budget needs nonlinear features. Each net's rate follows the "
           "paper's criterion itself, the fewest steps to E*: the net is trained from one init on the same batches "
           "at 0.007 and 0.014 (a grid centred on 0.01) in lockstep, and the rate whose training error first reaches "
           "E* is its rate (the other stops there, as it can no longer be faster); while that rate is at the edge of "
           "the rates raced, the next rate beyond it (x2 or /2, up to two, so 0.00175 to 0.056 can be reached) is "
           "raced too, capped one evaluation short of the best crossing so far; where no rate crossed, the rate "
           "nearest to E* at the cap (lowest final error) leads the same search, each rate beyond it trained as "
           "long. One rule, written before any run, for both nets; the speedup compares each net at its own fastest "
           "rate. Race: ReLU first (at most 3000 steps), then tanh for at most 4x ReLU's fastest crossing; all CNN "
           "steps of the run (every rate of both nets) are bounded by 28,000, the 10-minute budget. Inconclusive "
           "when ReLU crosses at no rate (precondition relu_reached; speedup_upper_bound records tanh's crossing if "
           "it had one), or when tanh never crossed and that bound cut its cap below 3x ReLU's steps (precondition "
           "tanh_decided). Training error on a fixed 2k training subset in eval mode every 100 steps; the fastest "
           "rate trains 10% past its crossing, so the speedup's bootstrap over those images (every rate's crossing "
           "re-read per resample, each net's fastest taken) can see crossings later than the point estimate's. Why "
           "the output layer's init (design 5's one change): with design 4's Glorot output layer on He-scaled ReLU "
           "features (max-pooled, rms 2.7) the ReLU net started with logits of s.d. 3 (loss 5.9; tanh 2.4), "
           "gradients 20-30x tanh's, and its first momentum steps shed that confidence by turning conv2's channels "
           "off for good (their inputs are ReLU outputs, all >= 0): 15 of 16 dead within 10 steps at lr 0.014, 11 at "
           "0.007, on seeds 0 and 1, at widths 32-32-64 too; a probe with the N(0, 0.01) output layer lost at most 1 "
           "channel at any rate of the grid. The output layer is linear and the same in both nets, so the change "
           "favours neither activation. Section 5's ReLU-only remedy, bias 1 in the ReLU layers after the first, was "
           "not adopted: with design 4's init it killed all 16 channels at 0.014, and with the paper's output layer "
           "it is not needed (no dead channel either way); the paper's N(0, 0.01) for the hidden layers too was not "
           "adopted: it is each activation's usual init that the audit asked for, and 0.01 was sized for AlexNet's "
           "fan-ins on raw-pixel inputs (s.d. about 60), not a 25-input conv on standardised ones. Design history "
           "(the ledger's numbers): design 1 used a fixed 15% target, one shared rate (0.02) with clipping and "
           "warmup, and counted ReLU's budget as its crossing (a published speedup 0.667 never measured). Design 2 "
           "stopped that count: ReLU never reached 15%, a target a linear model reaches as fast as the ReLU net, "
           "with clipping active on 93% of steps and raw inputs. Design 3 chose each rate by the lowest loss after a "
           "200-step pilot, a short-horizon proxy known to favour too-small rates (Wu et al. 2018), not the paper's "
           "criterion: it picked 0.005 for ReLU, which never reached E* in 3000 steps (tanh at its 0.02 did at step "
           "1950). Design 4 is this rate race with Glorot output layers; before its run, probes on a 10k subset "
           "(three rates within 17,000 CNN steps, then two within 26,000) found ReLU at a noise floor near 9% (E* "
           "4.9%, where the nets memorise the subset), hence the whole split and the search continued from the "
           "nearest rate when none crossed; its seed 0 was inconclusive: no ReLU rate reached E* = 9.45% (best "
           "13.75% at 0.014, the linear floor 14.45%; tanh crossed at step 3000 at 0.007), its ReLU net no better "
           "than the linear model, with 10 of conv2's 16 channels dead: the init above. Seeds: every seed must pass. "
           "Full: widths (32, 32, 64) (cuda-convnet's layers-18pct widths, the paper's Fig 1 net), 15k ReLU steps, "
           "110k CNN steps in all (about two CPU-hours); CIFAR-10 itself is not available offline."),))


# ===== alexnet/feature-neighbours =====================================================================================

NEIGHBOURS = {
    "smoke": NeighboursConfig(dataset="mnist", n_database=800, n_queries=250, batch_size=32, logreg_iters=20,
                              train=_sgd(150, 0.03, 0, 20, wd=5e-4, clip=1.0)),
    "quick": NeighboursConfig(),
    # 0.40 CPU-s per step measured: a checkpoint every 1000 steps is ~7 minutes
    "full": NeighboursConfig(scale=4, d_fc=1024, n_database=50_000, n_queries=10_000, batch_size=128,
                             train=dataclasses.replace(NeighboursConfig().train, steps=20_000, eval_every=2000,
                                                       ckpt_every=1000)),
}

_BEATS_LOGREG = at_least("acc_gain_over_logreg", 0.0, se="acc_gain_over_logreg_se",
                         name="the net's test accuracy > a softmax regression's on pixels (by 2 s.e.)")
register(Experiment(
    id="alexnet/feature-neighbours",
    claim="Images whose last-hidden-layer (fc7) features are close are semantically similar (Section 6.1, Fig 4).",
    paper_value="Fig 4 (qualitative): the 6 training images nearest in fc7 space share the query's class",
    configs=NEIGHBOURS,
    run=run_feature_neighbours,
    checks={
        "smoke": [at_least("agree_feat", "agree_feat_init", margin=0.05,
                           name="training makes fc7 neighbours agree more (>= +5 pp over the untrained net)")],
        "quick": [at_least("feat_minus_pix_pp", 5.0, se="feat_minus_pix_pp_se",
                           name="fc7 5-NN class agreement >= pixel 5-NN + 5 pp")],
        "full": [at_least("feat_minus_pix_pp", 5.0, se="feat_minus_pix_pp_se",
                          name="fc7 5-NN class agreement >= pixel 5-NN + 5 pp")],
    },
    # a net no better than a linear model on pixels has not learned the features the claim is about
    preconditions={b: [_BEATS_LOGREG] for b in ("quick", "full")},
    seed_rule=ALL_SEEDS,
    headline="feat_minus_pix_pp",
    full_scale=("Largest faithful scale: the AlexNet architecture at a quarter of its widths (LRN, overlapping "
                "pooling, dropout, groups = 2, fc 1024) with the paper's SGD recipe, 20,000 steps of 128 (51 epochs) "
                "on the 50k Fashion-MNIST training images, neighbours among all 50k for 10k test queries; the paper: "
                "the full-width net on ImageNet (224 x 224 colour), about 90 epochs on two GPUs; why: ImageNet is "
                "not available offline and 90 epochs of it need a GPU; about 2.3 CPU-hours here (estimate: 0.40 "
                "CPU-s per step measured)."),
    notes=("Width-scaled AlexNet for 28x28 (conv1 5x5 stride 1; widths (96, 256, 384, 384, 256) / 16; fc 256), with "
           "LRN in the paper's units (k=2, n=5, alpha=1e-4, beta=0.75; torch alpha 5e-4), overlapping pooling 3/2, "
           "dropout 0.5, groups=2; SGD momentum 0.9, weight decay 5e-4, batch 64 (paper 128), on the 50k "
           "Fashion-MNIST training split with the mean image subtracted and divided by the pixel s.d. (AlexNet "
           "Section 2 subtracts the mean image); lr 0.03 with a 200-step warmup and cosine decay to 0.003 over "
           "6000 steps (7.7 epochs; the paper divides its lr by 10 on plateaus over 90 epochs). Deviations: He init "
           "instead of N(0, 0.01) with bias 1 (tuned for the full model); gradient-norm clipping at 1, kept from "
           "the earlier design (the He-initialised net's first gradients are large: in probes at lr 0.03 on MNIST "
           "the net was at 91% error after 100 steps without clipping; after 150 steps at 59% with clipping at 2 "
           "and 31% at 1). Clipping is no part of the claim, which is about the trained features. Why the design "
           "is fair: Fig 4 shows the "
           "neighbours of a *trained* AlexNet (about 60% top-1 on ImageNet, far beyond a linear model on pixels). "
           "An earlier design trained 1.9 epochs on raw inputs with clipping at lr 0.01 and reached 80.6% test "
           "accuracy, below a softmax regression on the same pixels, so it did not test learned features; now a "
           "precondition requires the net to beat a softmax regression fitted (L-BFGS) on the same training "
           "pixels, on the whole test set, by 2 s.e. of the paired per-image difference, and the run is "
           "inconclusive otherwise. Agreement = share of the 5 nearest training images (a 10k database) with the "
           "query's class, over 5k test queries; the check's s.e. is that of the per-query difference (the same "
           "queries in both spaces). The +5 pp margin was fixed before the first run and is unchanged. Seeds: "
           "every seed must pass. The smoke check compares with the untrained net's fc7 (MNIST pixels are "
           "already excellent neighbours, about 95%). Full: scale 4, fc 1024, 20k steps at batch 128 on the "
           "whole split (about 2.3 CPU-hours; ImageNet itself needs a GPU)."),
))


# ===== resnet/degradation =============================================================================================

DEGRADATION = {
    "smoke": DegradationConfig(dataset="mnist", pool=4, n_shallow=1, n_deep=5, width=4, batch_size=32, n_train=2000,
                               n_train_eval=1000, n_test_eval=500, n_last=1, n_response=200,
                               train=_sgd(80, 0.1, 20, warmup=4, wd=1e-4, schedule="cosine")),
    "quick": DegradationConfig(),
    # 20k steps of 128 (51 epochs): 0.36 CPU-s per step of the four nets measured (0.14 for ResNet-56), so a
    # checkpoint every 2500 steps is at most ~6 minutes. The run keeps each evaluation's per-image errors outside
    # fit, so a resumed fit must re-evaluate the last n_last = 3: its last checkpoint (17,500) comes before 18,000
    "full": DegradationConfig(n_train=0, batch_size=128, n_train_eval=5000, n_test_eval=5000,
                              train=dataclasses.replace(DegradationConfig().train, steps=20_000, warmup=1000,
                                                        eval_every=1000, ckpt_every=2500)),
}  # fmt: skip

register(Experiment(
    id="resnet/degradation",
    claim=("Deeper plain nets have higher training error than shallower ones (degradation, not overfitting); the "
           "residual versions do not degrade (Figs 1, 6), and their layer responses are smaller (Fig 7)."),
    paper_value=("Fig 6 (CIFAR-10): plain-56 training error above plain-20's throughout; ResNet-56 below ResNet-20; "
                 "Table 6 test error ResNet-20 8.75%, ResNet-56 6.97%"),
    configs=DEGRADATION,
    run=run_degradation,
    checks={
        "smoke": [at_least("train_err_plain-32", "train_err_plain-8", margin=0.1,
                           name="plain-32 trains worse than plain-8 (by >= 10 pp)"),
                  at_most("train_err_resnet-32", "train_err_plain-32", margin=0.2,
                          name="ResNet-32 trains better than plain-32 (by >= 20 pp)")],
        "quick": [at_least("degradation_pp_plain", 2.0, se="degradation_pp_plain_se",
                           name="plain-56 training error >= plain-20's + 2 pp"),
                  at_most("degradation_pp_resnet", 0.5, se="degradation_pp_resnet_se",
                          name="ResNet-56 training error <= ResNet-20's + 0.5 pp"),
                  at_least("resnet_gain_deep_pp", 3.0, se="resnet_gain_deep_pp_se",
                           name="ResNet-56 training error <= plain-56's - 3 pp"),
                  holds("fig7_resnet_smaller", "Fig 7: mean response std of each ResNet < its plain twin's")],
        "full": [at_least("degradation_pp_plain", 1.0, se="degradation_pp_plain_se",
                          name="plain-56 training error >= plain-20's + 1 pp"),
                 at_most("degradation_pp_resnet", 0.0, se="degradation_pp_resnet_se",
                         name="ResNet-56 training error <= ResNet-20's"),
                 holds("fig7_resnet_smaller", "Fig 7: mean response std of each ResNet < its plain twin's")],
    },
    seed_rule=ALL_SEEDS,
    headline="degradation_pp_plain",
    full_scale=("Largest faithful scale: the paper's CIFAR-style plain and option-A residual nets at depths 20 and "
                "56 at half its widths (8, 16, 32) on Fashion-MNIST pooled to 14 x 14, 20,000 steps of 128 (51 "
                "epochs of the 50k split) with SGD momentum 0.9, lr 0.1 annealed, weight decay 1e-4; the paper: "
                "widths 16, 32, 64 on 32 x 32 CIFAR-10, 64k steps of 128 (about 180 epochs); why: CIFAR-10 is not "
                "available offline, and the paper's widths on 28 x 28 take 2.3 (ResNet-20) and 7.5 (ResNet-56) "
                "CPU-s per step here, weeks for 64k steps; about 2.1 CPU-hours here (estimate: 0.36 CPU-s per step "
                "of the four nets measured)."),
    notes=("CIFAR-style 6n+2 nets (3x3 convs, BN, option-A shortcuts for ResNets; the plain twin drops the "
           "shortcuts) at depths 20 and 56, widths {8, 16, 32} (paper {16, 32, 64}), on Fashion-MNIST average-pooled "
           "to 14x14; SGD momentum 0.9, lr 0.1 with 5% warmup and cosine to 0.001 (paper: step decay at 32k/48k), "
           "weight decay 1e-4 on weights (not BN), batch 64. Why the design is fair: Figs 1 and 6 compare training "
           "error through and at the end of long training (64k iterations, about 180 epochs of CIFAR-10), where "
           "the curves separate throughout; degradation means the deeper net cannot fit its own training set. So "
           "every net fits the same fixed 5k training images for 1200 steps (15 epochs), on the same batches, and "
           "the training error compared is each image's error averaged over the last 3 evaluations (steps 1000, "
           "1100, 1200, with the lr nearly annealed) on a fixed 2.5k half of that set, deep against shallow on the "
           "same images, each check by 2 s.e. of the paired per-image difference. An earlier design compared one "
           "evaluation after 400 steps (half an epoch of 50k), a transient where single evaluations swung by "
           "+-3 pp and the ResNet-20/56 curves crossed repeatedly, against a 0.5 pp margin on one seed. The "
           "margins (2, 0.5, 3 pp) are the earlier design's, unchanged. Seeds: every seed must pass. Fig 7: the "
           "responses are read after this training (not after half an epoch, when BN's scales had barely moved "
           "from 1), in eval mode on 500 test images, as each channel's s.d. (root mean square over channels); "
           "the earlier measure pooled all channels into one s.d., counting the channels' different offsets "
           "(BN's beta) as response. Smoke: 8 vs 32 layers on 7x7 MNIST, width 4, 80 steps. Full: the whole 50k "
           "split, batch 128, 20k steps (51 epochs; about 2.1 CPU-hours); the paper's widths on 32x32 images would "
           "take about a week on one thread."),
))

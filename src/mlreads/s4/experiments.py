"""S4 experiments, as declarations: HiPPO reconstruction, the random-A vs HiPPO-A ablation on (permuted) MNIST, and
S4D on sMNIST. The run functions, with their config dataclasses, live in exp_hippo_reconstruction.py,
exp_mnist_init.py and exp_smnist.py; what the MNIST ones share is in exp_common.py; the plots in figures.py.

Deviations (each also in the experiment's notes and config):
- Quick budgets shorten the MNIST sequences by average-pooling the 28x28 image (mnist-init: 4x4, 49 steps; smnist: 2x2,
  196 steps) and train for a few minutes; only the full budgets use 784 pixels, one at a time.
- s4/mnist-init uses our LSSL-style layer (dense A shared by the channels, Δ and C per channel, bilinear, A fixed),
  with the S4 block around it (GLU, pre-norm, mean pooling), not the LSSL paper's exact architecture.
"""

from __future__ import annotations

from dataclasses import replace

from mlreads.core.run.registry import Experiment, at_least, at_most, register
from mlreads.core.train import TrainConfig
from mlreads.s4.exp_common import DataConfig
from mlreads.s4.exp_hippo_reconstruction import ReconConfig, run_reconstruction
from mlreads.s4.exp_mnist_init import LSSL, InitConfig, run_mnist_init
from mlreads.s4.exp_smnist import SmnistConfig, run_smnist
from mlreads.s4.model import S4Config

# ===== s4/hippo-reconstruction ========================================================================================

register(Experiment(
    id="s4/hippo-reconstruction",
    source="hippo",
    claim="HiPPO-LegS memorises a signal's history online as Legendre coefficients; a random A of the same size cannot.",
    paper_value="HiPPO Fig. 2-3: LegS reconstructs the history; random A is not in the paper (LSSL §5.4 ablates it)",
    configs={
        "smoke": ReconConfig(length=300, n_train=256, n_test=64),
        "quick": ReconConfig(),
        "full": ReconConfig(length=4000, n_train=4096, n_test=1024),
    },
    run=run_reconstruction,
    checks={b: [at_least("mse_ratio_random_over_legs", 10.0)] for b in ("smoke", "quick", "full")},
    headline="mse_ratio_random_over_legs",
    full_scale="The paper's recipe: HiPPO Figs 2-3's setting (LegS memory of a smooth signal, read back as "
    "Legendre coefficients) with N=64, on 4096 training and 1024 test signals of 4000 steps; nothing is trained but a "
    "least-squares read-out; about 0.02 CPU-hours here (estimate: quick's 2.7 CPU-s scaled by the signals' length "
    "and count).",
    notes="Random A follows the LSSL code's ablation scale (A_ij ~ N(0, 1/N^2), B = 1). Its eigenvalues are small "
    "(|λ| ~ 1/sqrt(N)), so the impulse responses t^(-λ) of all modes look alike and the final state spans only a few "
    "directions of the history (state_rank_*: numerical rank of the states over the training signals). "
    "Both systems get the same least-squares linear read-out; LegS also has its analytic Legendre read-out.",
))  # fmt: skip

# ===== s4/mnist-init ==================================================================================================

register(Experiment(
    id="s4/mnist-init",
    source="lssl",
    claim="HiPPO A beats a random A by a wide margin on permuted (and sequential) MNIST.",
    paper_value="pMNIST: random A ~62%, HiPPO A 98.60 (fixed) / 98.76 (trained)",
    configs={
        "smoke": InitConfig(
            model=replace(LSSL, d_model=32, d_state=32, n_layers=1),
            train=TrainConfig(steps=300, lr=3e-2, warmup=10, weight_decay=0.01, log_every=50, eval_every=100),
            data=DataConfig(pool=4, n_train=10_000, n_eval=1_000, n_val=500), batch_size=64, tasks=("permuted",)),
        "quick": InitConfig(),
        # 784 steps, permuted MNIST only (the paper's task; the checks read it): 0.80 CPU-s per step measured for
        # each model, so a checkpoint every 500 steps is ~7 minutes (4 layers of 128 for 40,000 steps and both tasks:
        # 3.5 s per step, 155 CPU-hours)
        "full": InitConfig(
            model=LSSL,
            train=TrainConfig(steps=4000, lr=1e-2, warmup=200, weight_decay=0.01, eval_every=500, log_every=50,
                              ckpt_every=500),
            data=DataConfig(pool=1), batch_size=64, tasks=("permuted",)),
    },
    run=run_mnist_init,
    checks={
        "smoke": [at_least("acc_hippo", 40.0), at_least("acc_hippo", "acc_random", margin=10.0)],
        "quick": [at_least("acc_hippo", "acc_random", margin=15.0), at_least("acc_hippo", 90.0)],
        "full": [at_least("acc_hippo", 98.0), at_most("acc_random", 75.0)],
    },
    requires=("mnist",),
    headline="acc_hippo",
    full_scale="Largest faithful scale: LSSL Section 5.4's ablation on permuted MNIST at 784 steps, the same "
    "2-layer model (d_model 64, N=64, A fixed) with A = HiPPO-LegS and with a random A, 4000 steps of 64 (5 epochs) "
    "each; the paper: larger LSSL models trained for many epochs (98.60% HiPPO, about 62% random); why: one step at "
    "784 costs 0.8 CPU-s here for this model and 3.5 for 4 layers of 128 (the previous full: 40,000 steps on both "
    "tasks, 155 CPU-hours), and sequential MNIST is left to quick and s4/smnist; about 1.9 CPU-hours here "
    "(estimate from the measured step, plus evaluations).",
    notes="Reading list: 'random A gets 60%, Legendre 98%'. The source is LSSL §5.4 on permuted MNIST (random A 62%, "
    "HiPPO A 98.60 fixed / 98.76 trained); the S4 paper restates it for sequential MNIST. Checks use the first task "
    "in cfg.tasks (permuted). Deviations: quick pools the image 4x4 (49 steps instead of 784), uses N=32 and trains "
    "600 steps of 64 (0.77 epoch, at most 140 s per model) per model; smoke trains 300 steps on 10k images. Model: "
    "LSSL-style layers (dense fixed A, bilinear, Krylov kernel by repeated squaring) in the S4 block. Both models of a "
    "task start from the same init stream and see the same batches. Full runs the paper's task alone (permuted, "
    "784 steps), 4000 steps per model.",
))  # fmt: skip

# ===== s4/smnist ======================================================================================================

register(Experiment(
    id="s4/smnist",
    source="s4d",
    claim="S4 and S4D classify sequential MNIST (784 pixels, one at a time; the quick budget pools 2x2 to 196 steps).",
    paper_value="S4 99.63, LSSL 99.53, HiPPO-RNN 98.9; The Annotated S4 99.55 after 20 epochs",
    configs={
        "smoke": SmnistConfig(
            model=S4Config(d_model=32, d_state=32, n_layers=1),
            train=TrainConfig(steps=300, lr=3e-2, warmup=10, weight_decay=0.01, log_every=50, eval_every=100),
            data=DataConfig(pool=4, n_train=10_000, n_eval=1_000, n_val=500)),
        "quick": SmnistConfig(),
        # 784 steps, 4 layers of 64: 1.30 CPU-s per step measured, so a checkpoint every 300 steps is ~6.5 minutes
        # (4 layers of 128 for 80,000 steps: 3.1 s per step, 68 CPU-hours)
        "full": SmnistConfig(
            model=S4Config(d_model=64, d_state=64, n_layers=4, kernel="s4d", dropout=0.0),
            train=TrainConfig(steps=5500, lr=1e-2, warmup=300, weight_decay=0.01, eval_every=500, log_every=50,
                              ckpt_every=300),
            data=DataConfig(pool=1), batch_size=50),
    },
    run=run_smnist,
    checks={
        "smoke": [at_least("test_acc", 50.0)],
        "quick": [at_least("test_acc", 90.0)],
        "full": [at_least("test_acc", 99.0)],
    },
    requires=("mnist",),
    headline="test_acc",
    full_scale="Largest faithful scale: S4D on sequential MNIST at 784 pixels, one at a time, 4 layers of 64 "
    "(N=64), 5500 steps of 50 (5.5 epochs); the paper: wider S4/S4D stacks trained for tens to hundreds of epochs "
    "(The Annotated S4: 99.55% after 20); why: one step at 784 costs 1.3 CPU-s here for this model and 3.1 for 4 "
    "layers of 128 (the previous full, 80,000 steps: 68 CPU-hours); about 2.0 CPU-hours here (estimate from the "
    "measured step, plus evaluations).",
    notes="Quick pools the image 2x2 (196 steps) and trains 2 layers for 1000 steps of 64 (1.3 epochs, stopped at "
    "520 s if slower); the 90% quick floor is ours "
    "(quick reports accuracy and time). Full is 784 steps, as in the papers. time_to_target_s is the "
    "wall-clock time until the validation accuracy (1k images, checked every eval_every steps) first reaches 98%.",
))  # fmt: skip

# %% [markdown]
# # AlexNet: a deep convolutional network trained on ImageNet
#
# **Paper.** Krizhevsky, Sutskever & Hinton 2012, *ImageNet Classification with Deep Convolutional Neural Networks*,
# NIPS 2012 ([proceedings](https://papers.nips.cc/paper/4824-imagenet-classification-with-deep-convolutional-neural-networks);
# the paper has no arXiv version).
#
# **The idea.** A large convolutional network (five convolutional and three fully connected layers, 60 million
# parameters) trained end to end with SGD on 1.2 million labelled images, made trainable and kept from overfitting
# by a handful of choices: non-saturating ReLU units (Section 3.1), the model split across two GPUs (3.2), local
# response normalisation (3.3), overlapping max pooling (3.4), data augmentation and dropout (Section 4).
#
# **Our claims.**
# - `alexnet/relu-vs-tanh` (Section 3.1, Fig 1): a four-layer CNN with ReLUs reaches a target training error several
#   times faster than the same net with tanh units (the paper: 25% on CIFAR-10, six times faster).
# - `alexnet/feature-neighbours` (Section 6.1, Fig 4): images whose last-hidden-layer (fc7) features are close in
#   Euclidean distance are semantically similar.
#
# Both run on 28x28 MNIST / Fashion-MNIST at CPU scale (ImageNet and CIFAR-10 are not available offline). This
# walkthrough reads the two layer equations and their code, builds the full-size AlexNet to count its parameters and
# neurons, runs both experiments at the smoke budget (seconds: pipeline checks, not measurements) and draws Fig 1 and
# Fig 4 from their outputs.

# %%

import matplotlib.pyplot as plt
import torch

import mlreads
from mlreads.core.report import walkthrough as wt
from mlreads.vision.alexnet import (
    AlexNet,
    AlexNetConfig,
    SmallConvNet,
    local_response_norm,
    n_params,
    neuron_counts,
)
from mlreads.vision.exp_alexnet_feature_neighbours import fc7, knn_agreement
from mlreads.vision.exp_common import load_images, standardise
from mlreads.vision.figures import neighbours_figure
from mlreads.vision.reference import local_response_norm_ref

torch.manual_seed(0)
torch.set_num_threads(1)

# %% [markdown]
# ## Section 3.1: ReLU instead of tanh
#
# The standard unit of the time was $f(x) = \tanh(x)$ (or the logistic sigmoid). Its gradient
# $f'(x) = 1 - \tanh^2(x)$ vanishes as $|x|$ grows: the unit *saturates*. The rectified linear unit
#
# $$f(x) = \max(0, x), \qquad f'(x) = \begin{cases} 1 & x > 0 \\ 0 & x < 0 \end{cases}$$
#
# does not saturate for positive inputs, and the paper's Fig 1 shows a small CNN with ReLUs reaching 25% training
# error on CIFAR-10 six times faster than the same net with tanh. Our Fig 1 net follows that four-layer design (three
# 5x5 convolutions, each followed by the nonlinearity and an overlapping 3/2 max pool, then one linear layer); the
# activation is a config field:

# %%
wt.show_source(SmallConvNet);

# %% [markdown]
# ## Section 3.3: local response normalisation
#
# After the ReLUs of conv1 and conv2, each activity $a^i_{x,y}$ of kernel map $i$ at position $(x, y)$ is divided by
# a power of the summed squares of its $n$ neighbouring maps at the same position ($N$ maps in all):
#
# $$b^i_{x,y} = a^i_{x,y} \Big/ \Big(k + \alpha \sum_{j=\max(0,\, i - n/2)}^{\min(N - 1,\, i + n/2)}
#   \big(a^j_{x,y}\big)^2\Big)^{\beta}, \qquad k = 2,\; n = 5,\; \alpha = 10^{-4},\; \beta = 0.75.$$
#
# The package calls torch's `local_response_norm`, whose $\alpha$ is divided by $n$ (so it is given $\alpha n$); the
# docstring says so, and a literal loop over the maps in `mlreads.vision.reference` checks it:

# %%
wt.show_source(local_response_norm)
a = torch.randn(2, 12, 4, 4) * 30  # large activities, so the denominator is far from k
print("max |package - literal loop|:", float((local_response_norm(a) - local_response_norm_ref(a)).abs().max()))

# %% [markdown]
# ## The full network (Section 3.5)
#
# `AlexNetConfig()` is the paper's net: conv1 11x11 stride 4 with 96 kernels, conv2 5x5 with 256, conv3-5 3x3 with
# 384, 384, 256; two fully connected layers of 4096 and a 1000-way softmax; conv2, conv4 and conv5 see only their own
# GPU's half of the maps (`groups=2`). The input is 227x227, not the paper's 224 (with 224, conv1's output side would
# be 54.25). The paper counts "60 million parameters" and lists the neurons per layer as 253,440-186,624-64,896-
# 64,896-43,264-4096-4096-1000:

# %%
full = AlexNet(AlexNetConfig())
print(f"{n_params(full):,} parameters")
print("neurons per layer (conv1..fc8):", neuron_counts(AlexNetConfig()))
print("feature-map side after conv1, pool1, conv2, pool2, conv3, conv4, conv5, pool5:", AlexNetConfig().spatial_sizes())
del full

# %% [markdown]
# All but conv1 match the paper's list. With 96 maps of 55x55, conv1 has 290,400 neurons; 253,440 is a known
# inconsistency of the paper, like 224 vs 227.
#
# The experiments use `AlexNetConfig.mnist()`, a width-scaled copy for 28x28 grey images that keeps every mechanism
# (LRN, overlapping pooling, dropout, groups). Its hook points record each layer, and `features(x)` is fc7, the
# vector Section 6.1 compares:

# %%
small = AlexNet(AlexNetConfig.mnist(scale=16, d_fc=256, init="kaiming")).eval()
logits, cache = small.run_with_cache(torch.randn(2, 1, 28, 28))
print(f"{n_params(small):,} parameters;", {name: tuple(t.shape) for name, t in cache.items()})

# %% [markdown]
# ## Fig 1: ReLU against tanh (smoke budget)
#
# The experiment first trains a softmax regression on the pixels (the same batches, at each rate of a small grid) and
# sets the target training error below the best one's, so that crossing it needs nonlinear features (as 25% does on
# CIFAR-10). Then it picks each net's learning rate by the paper's own criterion ("chosen independently to make
# training as fast as possible"): the net is trained at every rate of the grid in lockstep, from the same init on the
# same batches, and the rate that first reaches the target is that net's rate. The speedup compares ReLU's fastest
# rate with tanh's. The smoke budget uses a fixed 30% target on 5,000 MNIST images and 200 steps: it checks that the
# races run, and its step counts mean nothing about the claim.

# %%
result, run_dir = wt.smoke("alexnet/relu-vs-tanh")
m = result["metrics"]
print(f"smoke verdict: {result['verdict']} | target {m['target_err']:.0%} | steps to it: ReLU {m['relu_steps']}, "
      f"tanh {m['tanh_steps']} | fastest rates: ReLU {m['lr_relu']}, tanh {m['lr_tanh']}")

# %% [markdown]
# The run's log (`metrics.jsonl`) holds its races in order, the softmax regression's, the ReLU net's and the tanh
# net's (and any rate raced beyond the grid's edge, as `relu-lr0.04`, say); each row names the race it belongs to, and
# `wt.fits` groups them. Each evaluation row gives the training error of every rate still racing (`train_err_0.01`).
# We draw each model at its chosen rate: Fig 1's curves.

# %%
fig, ax = plt.subplots(figsize=(6.4, 3.8))
chosen = {"softmax regression (pixels)": ("linear", m["lr_linear"]), "ReLU CNN": ("relu", m["lr_relu"]),
          "tanh CNN": ("tanh", m["lr_tanh"])}
for (name, (race, lr)), style in zip(chosen.items(), (":", "-", "--")):
    key = f"train_err_{lr:g}"
    ev = [r for fit, rows in wt.fits(run_dir).items() if fit.split("-")[0] == race for r in rows if key in r]
    ax.plot([r["step"] for r in ev], [100 * r[key] for r in ev], style, marker="o", ms=3, label=f"{name}, lr {lr:g}")
ax.axhline(100 * m["target_err"], color="grey", lw=0.8, label="target training error")
ax.set_xlabel(f"step (batch {result['config']['batch_size']})")
ax.set_ylabel("training error (%)")
ax.set_title("smoke budget: a pipeline check, not a measurement", fontsize=9)
ax.legend(fontsize=8)
plt.show()

# %% [markdown]
# ## Fig 4: nearest neighbours in fc7 space (smoke budget)
#
# Section 6.1 takes the 4096-d fc7 vector of a test image and shows the training images whose vectors are nearest in
# Euclidean distance: they share the query's class even where their pixels differ (a dog in another pose). Our
# experiment trains the scaled AlexNet, then measures, over many test queries, the share of each query's 5 nearest
# training images that have the query's class, in fc7 space and in pixel space. Its quick budget runs on
# Fashion-MNIST, where pixel distance is a weaker baseline than on MNIST. The nearest-neighbour search:

# %%
wt.show_source(knn_agreement);

# %% [markdown]
# The smoke run trains for 150 steps on MNIST: a pipeline check; its smoke check only asks that training moved fc7
# neighbours closer to the query's class than the untrained net's.

# %%
result, run_dir = wt.smoke("alexnet/feature-neighbours")
m = result["metrics"]
print(f"smoke verdict: {result['verdict']} | class agreement of the 5 nearest: fc7 {m['agree_feat']:.3f} "
      f"(untrained net {m['agree_feat_init']:.3f}), pixels {m['agree_pix']:.3f} | test accuracy {m['test_acc']:.3f}")

# %% [markdown]
# Now Fig 4 itself, from the model the run saved (`mlreads.load_run`): six MNIST test images, each with its five
# nearest training images (out of 800) in the trained net's fc7 space and, for comparison, in pixel space. The
# inputs are standardised as in training; the figure shows their raw pixels.

# %%
net = mlreads.load_run(run_dir)["alexnet"]
data = load_images("mnist")
(raw_tr, y_tr), (raw_te, y_te) = data["train"], data["test"]
x_tr, x_te = standardise(raw_tr, raw_te)
db, db_y, q, q_y = x_tr[:800], y_tr[:800], x_te[:6], y_te[:6]
agree_f, idx_f = knn_agreement(fc7(net, db), db_y, fc7(net, q), q_y, k=5)
agree_p, idx_p = knn_agreement(db.flatten(1), db_y, q.flatten(1), q_y, k=5)
show = lambda images: images.flatten(-3).numpy()  # draw the raw pixels, not the standardised ones
fig = neighbours_figure(show(raw_te[:6]), show(raw_tr[idx_f]), show(raw_tr[idx_p]), 28,
                        f"smoke model: 5 nearest share the query's class {agree_f:.0%} (fc7) / {agree_p:.0%} (pixels)")
plt.show()

# %% [markdown]
# ## What the quick runs found
#
# The published quick runs (10 minutes each on a 2-core CPU, on Fashion-MNIST) decide the claims; these cells read
# them from the ledger (`results/`), so they always show the current verdict.

# %%
print(wt.published("alexnet/relu-vs-tanh"))
print()
print(wt.published("alexnet/feature-neighbours"))

# %% [markdown]
# **Read next.** The model: `src/mlreads/vision/alexnet.py` (its docstring maps each config field to the paper and
# lists the deviations); the experiments: `src/mlreads/vision/exp_alexnet_relu_vs_tanh.py` (the target rule, the
# races and the rate rule) and `src/mlreads/vision/exp_alexnet_feature_neighbours.py`; the claims' pages:
# `reports/claims/alexnet__relu-vs-tanh/index.html` and `reports/claims/alexnet__feature-neighbours/index.html`
# after `mlreads report`. Dropout, which AlexNet used in fc6 and fc7, has its own walkthrough in
# [dropout.ipynb](dropout.ipynb); the deeper nets that followed, in [resnet.ipynb](resnet.ipynb).

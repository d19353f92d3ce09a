# %% [markdown]
# # ResNet: deep residual learning
#
# **Paper.** He, Zhang, Ren & Sun 2016, *Deep Residual Learning for Image Recognition*, CVPR 2016,
# [arXiv:1512.03385](https://arxiv.org/abs/1512.03385).
#
# **The idea.** Stacking more layers onto a plain convolutional net eventually makes it *worse on its own training
# set*: the deeper net has more capacity, yet SGD fits the data less well. The paper calls this *degradation*; it is
# not overfitting, since the training error rises too. A deeper net could always copy the shallower one and make its
# extra layers the identity, so the optimiser is what fails. The fix: let each pair of layers learn a *residual*
# $F(x)$ added to an identity shortcut, $y = F(x) + x$; then the identity is the easy default ($F = 0$), and 152-layer
# nets train.
#
# **Our claim** (`resnet/degradation`, Figs 1, 6 and 7): a deeper plain net has a higher training error than a
# shallower one; the residual versions of the same nets do not degrade; and the residual nets' layer responses are
# smaller than their plain twins'.
#
# This walkthrough reads Eq 1 and the block that implements it, builds the CIFAR family of Section 4.2, runs the
# degradation experiment at the smoke budget (seconds: a pipeline check, not a measurement) and draws Fig 6 and Fig 7
# from the run's log and saved models.

# %%

import matplotlib.pyplot as plt
import torch

import mlreads
from mlreads.core.report import walkthrough as wt
from mlreads.vision.alexnet import n_params
from mlreads.vision.exp_common import load_images
from mlreads.vision.figures import degradation_figure, responses_figure
from mlreads.vision.resnet import (
    BasicBlock,
    ResNet,
    ResNetConfig,
    channel_std,
    response_stds,
    shortcut_a,
)

torch.manual_seed(0)
torch.set_num_threads(1)

# %% [markdown]
# ## Eq 1: the residual block
#
# A building block computes
#
# $$y = F(x, \{W_i\}) + x, \qquad F = W_2\, \sigma(W_1 x) \text{ (two layers, biases omitted; } \sigma = \text{ReLU)},$$
#
# followed by another ReLU. In the CIFAR and ImageNet nets each $W_i$ is a 3x3 convolution followed by batch
# normalisation. Where a block changes the shape (stride 2, more channels), the shortcut must change too: either
# (A) the identity, subsampled, with zero channels appended (no parameters; the CIFAR nets use it) or (B) a
# projection, Eq 2:
#
# $$y = F(x, \{W_i\}) + W_s x.$$
#
# The *plain* twin is the same stack with the shortcut removed, $y = \sigma(F(x))$. In the package the block and its
# plain twin differ only in `cfg.residual`:

# %%
wt.show_source(BasicBlock)
wt.show_source(BasicBlock._add_shortcut)
wt.show_source(shortcut_a);

# %% [markdown]
# ## The CIFAR family (Section 4.2)
#
# A 3x3 stem, then three stages of $n$ blocks on maps of side 32, 16, 8 with 16, 32, 64 filters, global average
# pooling and a 10-way linear layer: $6n + 2$ weighted layers. The paper's Table 6 lists 0.27M parameters for
# ResNet-20, 0.46M for 32, 0.66M for 44, 0.85M for 56 and 1.7M for 110:

# %%
for n in (3, 5, 7, 9, 18):
    cfg = ResNetConfig.cifar(n)
    print(f"n = {n:2d}: {cfg.n_layers:3d} layers, {n_params(ResNet(cfg)):,} parameters")

# %% [markdown]
# Option A costs no parameters, so a plain net and its ResNet twin have exactly the same weights; only the forward
# pass differs. The hook points record each block's residual branch $F(x)$, its shortcut and its output:

# %%
plain, res = ResNet(ResNetConfig.cifar(3, residual=False)), ResNet(ResNetConfig.cifar(3))
print("same parameter count:", n_params(plain) == n_params(res))
_, cache = res.eval().run_with_cache(torch.randn(2, 3, 32, 32))
print({k: tuple(v.shape) for k, v in cache.items() if k.startswith("stages.1.blocks.0")})

# %% [markdown]
# ## Figs 1 and 6: degradation (smoke budget)
#
# The experiment trains four nets on the same fixed training images and the same batches: plain and residual, each
# shallow and deep. Every few steps it evaluates each net's error on a fixed part of its *training* set and on test
# images. Degradation is the deep plain net ending with a higher training error than the shallow one; the claim is
# that the residual nets do not show it. At the quick budget the nets have 20 and 56 layers on 14x14 Fashion-MNIST;
# the smoke budget has 8 and 32 layers on 7x7 MNIST for 80 steps, a pipeline check whose numbers say nothing about
# the paper.

# %%
result, run_dir = wt.smoke("resnet/degradation")
m = result["metrics"]
c = result["config"]
shallow, deep = 6 * c["n_shallow"] + 2, 6 * c["n_deep"] + 2
print(f"smoke verdict: {result['verdict']} | depths {shallow} and {deep}, {m['n_train']} training images of side "
      f"{m['image_side']}")
for name in (f"plain-{shallow}", f"plain-{deep}", f"resnet-{shallow}", f"resnet-{deep}"):
    print(f"  {name:10s} training error {m[f'train_err_{name}']:.3f}, test error {m[f'test_err_{name}']:.3f}")

# %% [markdown]
# The run's log (`metrics.jsonl`) holds the four trainings in the order they ran (plain shallow, plain deep, ResNet
# shallow, ResNet deep), each row naming its model; `wt.fits` groups them, and we draw Fig 6 with the package's figure
# function: training error dashed, test error bold, plain nets left, ResNets right.

# %%
names = [f"{kind}-{d}" for kind in ("plain", "resnet") for d in (shallow, deep)]
histories = dict(zip(names, wt.fits(run_dir).values()))
fig = degradation_figure(histories, shallow, deep, m["dataset"], m)
fig.suptitle("smoke budget: a pipeline check, not a measurement", fontsize=9, y=1.02)
plt.show()

# %% [markdown]
# ## Fig 7: the residual responses are smaller
#
# Section 4.2 measures the standard deviation of each 3x3 layer's response (its BN output, before the ReLU) on test
# images. If the identity is close to the right mapping, the residual branches only need small corrections, so the
# ResNets' responses should be smaller than the plain nets' at the same depth. The package measures each channel's
# s.d. and averages over channels (the root mean square), so that BN's per-channel offsets are not counted as
# response:

# %%
wt.show_source(channel_std)
wt.show_source(response_stds);

# %% [markdown]
# We recompute the responses from the four models the run saved (`mlreads.load_run`), on the first test images at the
# smoke run's resolution, and draw them in layer order and sorted by size, as Fig 7 does. After 80 steps the BN
# scales have hardly moved from 1, so at this budget the curves say little; the quick runs train for 15 epochs.

# %%
models = mlreads.load_run(run_dir)
x_test = load_images(m["dataset"], pool=c["pool"])["test"][0][: c["n_response"]]
responses = {name: response_stds(models[name].eval(), x_test) for name in names}
ratio = {d: sum(responses[f"resnet-{d}"]) / sum(responses[f"plain-{d}"]) for d in (shallow, deep)}
fig = responses_figure(responses, ratio[shallow], ratio[deep])
plt.show()

# %% [markdown]
# ## What the quick runs found
#
# The published quick runs (10 minutes each on a 2-core CPU) decide the claim; this cell reads them from the ledger
# (`results/`), so it always shows the current verdict and, when the claim is not reproduced, which check decided it.

# %%
print(wt.published("resnet/degradation"))

# %% [markdown]
# **Read next.** The model: `src/mlreads/vision/resnet.py` (its docstring maps each config field to the paper,
# including the ImageNet layouts of Table 1 and the bottleneck block, and lists the deviations; `ResNet.from_hf`
# loads transformers checkpoints); the experiment: `src/mlreads/vision/exp_resnet_degradation.py`; the claim's page:
# `reports/claims/resnet__degradation/index.html` after `mlreads report`. The net that ResNet deepened is in
# [alexnet.ipynb](alexnet.ipynb).

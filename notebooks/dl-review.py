# %% [markdown]
# # Deep learning (the Nature review): a net that warps space, and local minima that do not matter
#
# **Paper.** LeCun, Bengio & Hinton 2015, "Deep learning", Nature 521:436-444,
# [doi:10.1038/nature14539](https://doi.org/10.1038/nature14539) (a review; no arXiv version).
#
# **The idea.** A multi-layer network learns its own features: each layer applies a linear map and a non-linearity,
# and the composition can bend the input space until classes that no straight line separates lie on either side of
# one (Fig 1a). Its weights are trained by backpropagation, the chain rule applied layer by layer from the output down
# (Fig 1c-d). The review also argues (p. 438) that the non-convexity people feared is rarely a problem in practice:
# large networks trained from different random starts end at solutions of very similar quality.
#
# **Our claims.**
# - `dl-review/separability` (Fig 1a): a 2-2-1 net distorts the input space until the classes are linearly
#   separable.
# - `dl-review/local-minima` (p. 438): with large networks, runs from different initialisations reach solutions of
#   very similar quality.
#
# Below: backpropagation as Fig 1c-d writes it, checked against autograd; Fig 1a redrawn from a trained 2-2-1 net;
# and the spread of final losses across initialisations as the hidden layer widens.

# %%
import matplotlib.pyplot as plt
import numpy as np
import torch

import mlreads
from mlreads.core.report import walkthrough as wt
from mlreads.dl_review import Students, backprop_fig1, teacher_logit

torch.manual_seed(0)
torch.set_num_threads(1)

# %% [markdown]
# ## Fig 1c-d: backpropagation
#
# Forward, unit $j$ sums its weighted inputs and applies a non-linearity $f$; backward, the error derivative flows
# down the same weights:
#
# $$z_j = \sum_i w_{ij}\, x_i, \quad y_j = f(z_j); \qquad
# \frac{\partial E}{\partial y_l} = y_l - t_l, \quad
# \frac{\partial E}{\partial z_l} = \frac{\partial E}{\partial y_l} f'(z_l), \quad
# \frac{\partial E}{\partial y_k} = \sum_l w_{kl} \frac{\partial E}{\partial z_l}, \quad
# \frac{\partial E}{\partial w_{kl}} = y_k \frac{\partial E}{\partial z_l}$$
#
# for the squared error $E = \tfrac12 \sum_l (y_l - t_l)^2$. The package writes these lines in NumPy, one per
# equation (with biases added, whose gradient is $\partial E / \partial z$):

# %%
wt.show_source(backprop_fig1);

# %% [markdown]
# A check against PyTorch's autograd on a 2-2-1 tanh net (linear output unit) with random weights and eight points:
# the two sets of gradients agree to float64 precision.

# %%
rng = np.random.default_rng(0)
x, t = rng.normal(size=(8, 2)), rng.normal(size=(8, 1))
weights = [(rng.normal(size=(2, 2)), rng.normal(size=2)), (rng.normal(size=(2, 1)), rng.normal(size=1))]
manual = backprop_fig1(x, t, weights)

params = [torch.tensor(a, requires_grad=True) for layer in weights for a in layer]
W1, b1, W2, b2 = params
y = torch.tanh(torch.tensor(x) @ W1 + b1) @ W2 + b2
(0.5 * ((y - torch.tensor(t)) ** 2).sum()).backward()
ours = [g for layer in manual for g in layer]
print("max |Fig 1c-d - autograd|:", max(float(np.abs(g - p.grad.numpy()).max()) for g, p in zip(ours, params)))

# %% [markdown]
# ## Fig 1a: distorting the input space
#
# The experiment labels points of the square $[-2, 2]^2$ with a fixed 2-2-1 tanh "teacher" whose positive class is a
# bent band: a band has two edges, so no single line separates it. It then trains ten 2-2-1 tanh students from
# different initialisations (full-batch Adam, logistic loss) and the best line (logistic regression on the inputs):

# %%
wt.show_source(teacher_logit)
wt.show_source(Students.forward);

# %% [markdown]
# A student's output is $v_1 h_1 + v_2 h_2 + c$ with $h = \tanh(W_1^\top x + b_1)$: linear in its two hidden units.
# So if it classifies the band correctly, the hidden layer has mapped the plane to a square in which a line separates
# the classes. The smoke budget is the same as the quick one here (ten students, 1,500 steps, seconds); we still
# treat the run as a pipeline check and read the verdict from the ledger below.

# %%
result, run_dir = wt.smoke("dl-review/separability")
m = result["metrics"]
print(f"best line on the inputs: {m['linear_acc']:.1%} | students' training accuracy: "
      f"{', '.join(f'{a:.3f}' for a in m['student_acc'])}")
print(f"students at >= 99.5%: {m['n_separated']} of {len(m['student_acc'])} | a line re-fitted on the best "
      f"student's hidden units: {m['hidden_linear_acc']:.1%}")

# %% [markdown]
# `mlreads.load_run` rebuilds the ten trained students. We take the best one and redraw Fig 1a on fresh points from
# the same square: on the left the input plane with the student's decision boundary; on the right the same points
# after the hidden layer, with a grid of the plane carried along, and the output unit's boundary, a straight line.

# %%
students = mlreads.load_run(run_dir)["students"]
best = int(np.argmax(m["student_acc"]))
pts = torch.rand(1500, 2, generator=torch.Generator().manual_seed(0)) * 4 - 2
label = teacher_logit(pts) > 0  # (N,) bool


def warped_grid(ax, net, s, n_lines=13):
    """Lines of constant x1 and of constant x2 in [-2, 2]^2, mapped through student s's hidden layer."""
    g = torch.linspace(-2, 2, 200)
    for v in np.linspace(-2, 2, n_lines):
        c = torch.full_like(g, float(v))
        for line in (torch.stack([c, g], 1), torch.stack([g, c], 1)):
            h = net.hidden(line)[s].detach()
            ax.plot(h[:, 0], h[:, 1], color="0.8", lw=0.6, zorder=0)


# %%
fig, (a, b) = plt.subplots(1, 2, figsize=(11, 4.8))
a.scatter(*pts[~label].T, s=4, c="C0", label="class 0")
a.scatter(*pts[label].T, s=4, c="C3", label="class 1")
g = torch.linspace(-2, 2, 200)
X, Y = torch.meshgrid(g, g, indexing="xy")
with torch.no_grad():
    Z = students(torch.stack([X.reshape(-1), Y.reshape(-1)], 1))[best].reshape(200, 200)
    h = students.hidden(pts)[best]
a.contour(X, Y, Z, levels=[0], colors="k")
a.set(xlabel="x1", ylabel="x2", title="input space: the net's boundary (black) is curved", aspect="equal")
a.legend(loc="lower left", fontsize=8)
warped_grid(b, students, best)
b.scatter(*h[~label].T, s=4, c="C0")
b.scatter(*h[label].T, s=4, c="C3")
v, c = students.v[best].detach(), float(students.c[best].detach())
b.plot([-1, 1], [-(c - v[0]) / v[1], -(c + v[0]) / v[1]], "k-", label="output unit's boundary")
b.set(xlim=(-1.05, 1.05), ylim=(-1.05, 1.05), xlabel="hidden unit 1", ylabel="hidden unit 2", aspect="equal",
      title="hidden space: the same points, split by a line")
b.legend(loc="lower left", fontsize=8)
plt.tight_layout()
plt.show()

# %% [markdown]
# The grey curves are the grid lines of the input square, bent by the hidden layer. The trained net uses large
# weights, so its tanh units are mostly saturated and many points sit near the edges of the hidden square; what
# matters is that the two colours fall on opposite sides of the black line, which is the output unit's whole
# decision.
#
# ## p. 438: poor local minima are rarely a problem
#
# The review cites Dauphin et al. 2014 and Choromanska et al. 2015: in large networks most critical points are
# saddle points, and the local minima that remain have losses close to one another. The experiment trains, for each
# hidden width, several one-hidden-layer ReLU MLPs on MNIST from different initialisations, as one batched model on
# the same minibatches (SGD with momentum 0.9), so the runs differ only in where they start. The loss of a batch of
# nets is the sum of their own mean losses, so each net's parameters get exactly their own gradient:

# %%
wt.show_source(mlreads.dl_review.ManyMLPs.forward)
wt.show_source(mlreads.dl_review.per_seed_cross_entropy);

# %% [markdown]
# The smoke budget trains widths 4 and 64 (five nets each, 1,000 images, ten epochs); we add widths 16 and 256 and
# ten nets per width (`widths=4,16,64,256`, `n_seeds=10`, the quick budget's spread width 16), still on 1,000 images
# for ten epochs: a pipeline check, a few seconds.

# %%
overrides = {"widths": "4,16,64,256", "n_seeds": "10", "spread_width": "16"}
result, run_dir = wt.smoke("dl-review/local-minima", overrides=overrides)
m = result["metrics"]
widths = [4, 16, 64, 256]
for w in widths:
    print(f"width {w:3d}: final training loss {np.mean(m[f'train_loss_{w}']):.4f} +- {m[f'train_std_{w}']:.4f} "
          f"(std over {len(m[f'train_loss_{w}'])} initialisations), test loss {np.mean(m[f'test_loss_{w}']):.3f}")

# %%
fig, (a, b) = plt.subplots(1, 2, figsize=(11, 3.8))
for i, w in enumerate(widths):
    losses = m[f"train_loss_{w}"]
    a.scatter(losses, i + np.linspace(-0.15, 0.15, len(losses)), s=16)
a.set_yticks(range(len(widths)), [f"{w} units" for w in widths])
a.set(xscale="log", xlabel="final training loss (nats), one dot per initialisation", title="loss across starts")
b.plot(widths, [m[f"train_std_{w}"] for w in widths], "o-", label="std of the final training loss")
b.plot(widths, [m[f"train_cv_{w}"] for w in widths], "s--", label="std / mean")
b.set(xscale="log", yscale="log", xlabel="hidden width", ylabel="spread across initialisations",
      title="the spread shrinks as the net widens")
b.set_xticks(widths, [str(w) for w in widths])
b.minorticks_off()
b.legend(fontsize=8)
plt.tight_layout()
plt.show()

# %% [markdown]
# The std falls partly because the loss itself falls with width; the relative spread (std / mean, dashed) and the
# test-loss spread (`test_std_*` in the run's metrics) say the concentration is not only that.
#
# ## What the quick runs found
#
# The published quick runs (the claim's own budget, minutes on a 2-core CPU) decide the claims; these cells read
# them from the ledger (`results/`), so they always show the current verdicts.

# %%
print(wt.published("dl-review/separability"))

# %%
print(wt.published("dl-review/local-minima"))

# %% [markdown]
# **Read next.** The experiments: `src/mlreads/dl_review/exp_separability.py` and
# `src/mlreads/dl_review/exp_local_minima.py`; the models and Fig 1c-d: `src/mlreads/dl_review/model.py` (its
# docstring lists the deviations); the figures the runs save: `src/mlreads/dl_review/figures.py`. The claims' pages,
# after `mlreads report`: `reports/claims/dl-review__separability/index.html` and
# `reports/claims/dl-review__local-minima/index.html`. Dropout, the review's regulariser for large nets, is
# [dropout.ipynb](dropout.ipynb).

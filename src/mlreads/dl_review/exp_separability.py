"""dl-review/separability (Fig 1a): a 2-2-1 tanh net warps the plane until a band-shaped class is linearly
separable in its hidden units, where no line in input space separates it."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from mlreads.core.fields import in_range, positive
from mlreads.core.run.seeding import init_rng
from mlreads.core.train import TrainConfig, fit
from mlreads.dl_review.model import Students, teacher_logit


@dataclass(frozen=True)
class SeparabilityConfig:
    n_points: int = positive(1000)  # training points, uniform on [-2, 2]^2
    n_seeds: int = positive(10)  # students, one per initialisation
    # a student "separates" the classes at this training accuracy
    separated_acc: float = in_range(0.995, 0.0, 1.0, lo_open=True, hi_open=False)
    train: TrainConfig = field(default_factory=lambda: TrainConfig(
        steps=1500, lr=0.05, schedule="constant", optimizer="adam", grad_clip=None, log_every=100))  # fmt: skip
    linear: TrainConfig = field(default_factory=lambda: TrainConfig(
        steps=500, lr=0.05, schedule="constant", optimizer="adam", grad_clip=None, log_every=100))  # fmt: skip


def run_separability(cfg: SeparabilityConfig, ctx) -> dict:
    """Train 10 students and a logistic regression (the best line) full-batch on the teacher's labels.

    Metrics: linear_acc (input-space logistic regression), student_acc (per seed), n_separated (students at
    >= separated_acc; their output is linear in the hidden units, so the hidden image is then linearly separable),
    hidden_linear_acc (a fresh logistic regression on the best student's hidden units).
    """
    from mlreads.dl_review import figures

    g = ctx.generator("points")
    x = torch.rand(cfg.n_points, 2, generator=g) * 4 - 2  # (N, 2)
    y = (teacher_logit(x) > 0).float()  # (N,)
    full = lambda step, gen: (x, y)

    def students_loss(m, batch):
        xb, yb = batch
        return F.binary_cross_entropy_with_logits(m(xb), yb.expand(m.c.shape[0], -1), reduction="none").mean(1).sum()

    with init_rng(ctx.seed_for("init/students")):
        students = Students(cfg.n_seeds)
    fit(students, cfg.train, full, students_loss, ctx=ctx, desc="students")
    ctx.save_model("students", students)
    with torch.no_grad():
        acc = ((students(x) > 0).float() == y).float().mean(1)  # (S,)

    def line_acc(features, space: str):
        with init_rng(ctx.seed_for("init/line")):
            line = torch.nn.Linear(features.shape[1], 1)
        data = lambda step, gen: (features, y)
        # a name per space, not per width (both are 2-D): each fit checkpoints under checkpoints/<desc>/
        fit(line, cfg.linear, data, lambda m, b: F.binary_cross_entropy_with_logits(m(b[0])[:, 0], b[1]), ctx=ctx,
            desc=f"line-{space}")  # fmt: skip
        with torch.no_grad():
            return float(((line(features)[:, 0] > 0).float() == y).float().mean()), line

    linear_acc, line = line_acc(x, "inputs")
    best = int(acc.argmax())
    with torch.no_grad():
        h_best = students.hidden(x)[best]  # (N, 2)
    hidden_linear_acc, _ = line_acc(h_best, "hidden")

    ctx.savefig(figures.separability(students, best, x, y, line), "fig1a_warped_space",
                caption=("Left: the two classes in the input plane, the best straight line (logistic regression, "
                         "dashed) and the trained 2-2-1 net's boundary (black); right: the same points and a grid of "
                         "the plane in the net's hidden space, where its output unit's boundary is a line. The claim "
                         "predicts no line separates the classes on the left while the warped space on the right "
                         f"splits them by one; accuracies: {linear_acc:.0%} for the best line on the inputs, "
                         f"{hidden_linear_acc:.0%} for a line on the best net's hidden units."))
    return {
        "linear_acc": linear_acc,
        "student_acc": acc.tolist(),
        "n_separated": int((acc >= cfg.separated_acc).sum()),
        "best_student_acc": float(acc.max()),
        "hidden_linear_acc": hidden_linear_acc,
        "positive_frac": float(y.mean()),
    }

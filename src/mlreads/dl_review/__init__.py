"""The Deep Learning review (LeCun, Bengio & Hinton 2015): Fig 1's 2-2-1 net and backprop, many MLPs at once."""

from mlreads.dl_review.model import (
    ManyMLPs,
    Students,
    backprop_fig1,
    per_seed_cross_entropy,
    teacher_logit,
)

__all__ = ["ManyMLPs", "Students", "backprop_fig1", "per_seed_cross_entropy", "teacher_logit"]

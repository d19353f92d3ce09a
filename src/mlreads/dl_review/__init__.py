"""The Deep Learning review (LeCun, Bengio & Hinton 2015): Fig 1's 2-2-1 net and backprop, many MLPs at once."""

from mlreads.core.run.saved import Loadable
from mlreads.dl_review.model import (
    ManyMLPs,
    ManyMLPsConfig,
    Students,
    StudentsConfig,
    backprop_fig1,
    per_seed_cross_entropy,
    teacher_logit,
)

__all__ = ["ManyMLPs", "ManyMLPsConfig", "Students", "StudentsConfig", "backprop_fig1", "per_seed_cross_entropy",
           "teacher_logit"]

# The model classes a run may save and `mlreads.load_run` rebuilds (core/run/saved.py): each with its config.
LOADABLE = (Loadable(Students, StudentsConfig, kwargs=True), Loadable(ManyMLPs, ManyMLPsConfig, kwargs=True))

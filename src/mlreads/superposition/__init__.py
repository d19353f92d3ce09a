"""Toy Models of Superposition (Elhage et al. 2022, arXiv 2209.10652): batched toy models (model.py) and the measures
of their features (measures.py). The paper's headline experiments are registered in `experiments.py`; training them
(best of k restarts) is in `exp_common.py`, which the experiments share."""

from mlreads.core.run.saved import Loadable
from mlreads.superposition.measures import (
    GEOMETRY_NAMES,
    PHASES,
    STICKY_FRACTIONS,
    FeatureGroup,
    classify_phase,
    count_represented,
    detect_geometry,
    dimensions_per_feature,
    feature_dimensionality,
    feature_groups,
    feature_norms,
    geometry_counts,
    superposition,
)
from mlreads.superposition.model import (
    AbsConfig,
    AbsModel,
    ToyConfig,
    ToyModel,
    geometric_importance,
    importance_weighted_mse,
    sample_features,
    toy_forward,
    toy_hidden,
    toy_loss_tiny,
)

__all__ = [
    "GEOMETRY_NAMES", "PHASES", "STICKY_FRACTIONS", "FeatureGroup", "classify_phase", "count_represented",
    "detect_geometry", "dimensions_per_feature", "feature_dimensionality", "feature_groups", "feature_norms",
    "geometry_counts", "superposition", "AbsConfig", "AbsModel", "ToyConfig", "ToyModel", "geometric_importance",
    "importance_weighted_mse", "sample_features", "toy_forward", "toy_hidden", "toy_loss_tiny",
]  # fmt: skip

# The model classes a run may save and `mlreads.load_run` rebuilds (core/run/saved.py): each with its config.
LOADABLE = (Loadable(ToyModel, ToyConfig), Loadable(AbsModel, AbsConfig))

"""Toy Models of Superposition (Elhage et al. 2022, arXiv 2209.10652): batched toy models, their analysis and the
paper's headline experiments (registered in `mlreads.superposition.experiments`)."""

from mlreads.superposition.analysis import (
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
from mlreads.superposition.training import ToyTrain, best_of_restarts, eval_losses, grid_instances, train_toy

__all__ = [
    "GEOMETRY_NAMES", "PHASES", "STICKY_FRACTIONS", "FeatureGroup", "classify_phase", "count_represented",
    "detect_geometry", "dimensions_per_feature", "feature_dimensionality", "feature_groups", "feature_norms",
    "geometry_counts", "superposition", "AbsConfig", "AbsModel", "ToyConfig", "ToyModel", "geometric_importance",
    "importance_weighted_mse", "sample_features", "toy_forward", "toy_hidden", "toy_loss_tiny", "ToyTrain",
    "best_of_restarts", "eval_losses", "grid_instances", "train_toy",
]  # fmt: skip

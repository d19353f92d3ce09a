"""Transformer circuits: Elhage et al. 2021, "A Mathematical Framework for Transformer Circuits"
(transformer-circuits.pub/2021/framework), and Olsson et al. 2022, "In-context Learning and Induction Heads"
(arXiv:2209.11895).

Public API:
    FactoredMatrix                              low-rank matrices kept as A @ B (TransformerLens semantics)
    AttnOnlyConfig, AttnOnlyTransformer         0/1/2+-layer attention-only models with TL-convention weights and hooks
    direct_path, full_qk_circuit, full_ov_circuit, positional_qk_circuit, path_expansion,
    copying_scores, composition_scores, composition_baseline            circuit analysis (qk_ov.py)
    head_scores, repeated_sequence_scores, pattern_score, ov_copying_accuracy    head detectors (detectors.py)
"""

from mlreads.circuits.detectors import (
    duplicate_token_target,
    head_scores,
    induction_target,
    ov_copying_accuracy,
    pattern_score,
    previous_token_target,
    repeated_sequence_scores,
)
from mlreads.circuits.factored import FactoredMatrix, FactoredMatrixShapeError
from mlreads.circuits.model import AttnOnlyConfig, AttnOnlyTransformer
from mlreads.circuits.qk_ov import (
    composition_baseline,
    composition_scores,
    copying_scores,
    direct_path,
    full_ov_circuit,
    full_qk_circuit,
    pairwise_composition,
    path_expansion,
    positional_qk_circuit,
)
from mlreads.core.run.saved import Loadable

__all__ = [
    "FactoredMatrix",
    "FactoredMatrixShapeError",
    "AttnOnlyConfig",
    "AttnOnlyTransformer",
    "direct_path",
    "full_qk_circuit",
    "full_ov_circuit",
    "positional_qk_circuit",
    "path_expansion",
    "copying_scores",
    "composition_scores",
    "composition_baseline",
    "pairwise_composition",
    "head_scores",
    "repeated_sequence_scores",
    "pattern_score",
    "previous_token_target",
    "duplicate_token_target",
    "induction_target",
    "ov_copying_accuracy",
]

# The model classes a run may save and `mlreads.load_run` rebuilds (core/run/saved.py): each with its config.
LOADABLE = (Loadable(AttnOnlyTransformer, AttnOnlyConfig),)

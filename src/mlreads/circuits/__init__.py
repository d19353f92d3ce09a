"""Transformer circuits: Elhage et al. 2021, "A Mathematical Framework for Transformer Circuits", and Olsson et al.
2022, "In-context Learning and Induction Heads" (arXiv:2209.11895).

Public API: `FactoredMatrix`.
"""

from mlreads.circuits.factored import FactoredMatrix

__all__ = ["FactoredMatrix"]

"""Mamba: Linear-Time Sequence Modeling with Selective State Spaces (Gu & Dao 2023, arXiv 2312.00752).

Public API: `selective_scan` (mamba-ssm's `selective_scan_fn` layout), `selective_scan_ref`,
`selective_state_update` (mamba-ssm's single step: updates the state in place, returns out), and the model
classes `MambaConfig`, `MambaLM`.
"""

from mlreads.core.run.saved import Loadable
from mlreads.mamba.model import MambaConfig, MambaLM, MambaMixer, RMSNorm
from mlreads.mamba.reference import selective_scan_ref
from mlreads.mamba.scan import ChunkedScan, selective_scan
from mlreads.mamba.step import selective_state_update

__all__ = [
    "MambaConfig", "MambaLM", "MambaMixer", "RMSNorm",
    "selective_scan", "selective_scan_ref", "selective_state_update", "ChunkedScan"]

# The model classes a run may save and `mlreads.load_run` rebuilds (core/run/saved.py): each with its config.
LOADABLE = (Loadable(MambaLM, MambaConfig),)

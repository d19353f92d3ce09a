"""S4 and friends: HiPPO matrices, discretisation, the S4D / S4 / LSSL kernels, FFT convolution and recurrence, layers.

Papers: HiPPO (arXiv 2008.07669), LSSL (arXiv 2110.13985), S4 (arXiv 2111.00396), S4D (arXiv 2206.11893).
"""

from mlreads.core.run.saved import Loadable
from mlreads.s4.discretize import bilinear, bilinear_diag, zoh, zoh_diag
from mlreads.s4.hippo import (
    DPLR,
    dplr_legs,
    legs,
    legs_rank_correction,
    legt,
    random_a,
    s4d_init,
)
from mlreads.s4.kernels import (
    StepForm,
    c_from_c_tilde,
    c_tilde,
    cauchy,
    dplr_dense,
    dplr_kernel,
    fft_conv,
    krylov_kernel,
    ssm_step,
    vandermonde_kernel,
)  # fmt: skip
from mlreads.s4.model import (
    DenseKernel,
    S4Config,
    S4DKernel,
    S4Kernel,
    S4Layer,
    SequenceClassifier,
)

__all__ = [
    "bilinear", "bilinear_diag", "zoh", "zoh_diag",
    "DPLR", "dplr_legs", "legs", "legs_rank_correction", "legt", "random_a", "s4d_init",
    "StepForm", "c_from_c_tilde", "c_tilde", "cauchy", "dplr_dense", "dplr_kernel", "fft_conv", "krylov_kernel",
    "ssm_step", "vandermonde_kernel",
    "DenseKernel", "S4Config", "S4DKernel", "S4Kernel", "S4Layer", "SequenceClassifier",
]  # fmt: skip

# The model classes a run may save and `mlreads.load_run` rebuilds (core/run/saved.py): each with its config.
LOADABLE = (Loadable(SequenceClassifier, S4Config),)

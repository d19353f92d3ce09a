"""Test-wide settings: one torch thread per xdist worker (docs/cli.md, "Threads"), no progress bars."""

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MLREADS_PROGRESS", "0")

import matplotlib  # noqa: E402

matplotlib.use("Agg")

import torch  # noqa: E402
from hypothesis import settings  # noqa: E402

torch.set_num_threads(1)

# CI draws the same hypothesis examples every run, so a red CI is reproducible; local runs keep exploring.
settings.register_profile("ci", derandomize=True, deadline=None)
if os.environ.get("CI"):
    settings.load_profile("ci")

"""Pieces of the vision experiments: steps-to-target, kNN agreement, and the exit-2 path without Fashion-MNIST."""

import pytest
import torch

from mlreads.core.errors import DataMissing
from mlreads.core.run.registry import load_all
from mlreads.core.run.runner import run_experiment
from mlreads.vision.exp_alexnet_feature_neighbours import knn_agreement
from mlreads.vision.exp_alexnet_relu_vs_tanh import first_step_below


def test_first_step_below_target():
    hist = [{"step": 10, "loss": 1.0}, {"step": 50, "train_err": 0.3}, {"step": 100, "train_err": 0.09},
            {"step": 150, "train_err": 0.12}]  # fmt: skip
    assert first_step_below(hist, 0.1) == 100 and first_step_below(hist, 0.05) is None


def test_knn_agreement_counts_shared_labels():
    db = torch.tensor([[0.0], [0.1], [0.2], [5.0], [5.1]])
    db_y = torch.tensor([0, 0, 1, 1, 1])
    agree, idx = knn_agreement(db, db_y, torch.tensor([[0.05], [5.05]]), torch.tensor([0, 1]), k=2)
    assert agree == 1.0 and set(idx[1].tolist()) == {3, 4}
    agree3, _ = knn_agreement(db, db_y, torch.tensor([[0.05]]), torch.tensor([0]), k=3)
    assert abs(agree3 - 2 / 3) < 1e-6


@pytest.mark.parametrize("exp_id", ["alexnet/relu-vs-tanh", "resnet/degradation"])
def test_quick_budget_without_fashion_mnist_names_the_install_command(exp_id, tmp_path, monkeypatch):
    from mlreads.core.data import fashion

    monkeypatch.delenv("MLREADS_FASHION", raising=False)
    monkeypatch.setattr(fashion, "DEBIAN_DIR", tmp_path / "absent")
    with pytest.raises(DataMissing, match="apt-get install -y dataset-fashion-mnist"):
        run_experiment(load_all()[exp_id], "quick", out=tmp_path, threads=1)

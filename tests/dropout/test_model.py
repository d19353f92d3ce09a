"""Paper dropout against torch's conventions: nn.Dropout (inverted scaling) and torch.renorm (max-norm)."""

import pytest
import torch
from torch import nn

from mlreads.dropout import (
    DropoutMLP,
    MLPConfig,
    dropout_mask,
    max_norm_,
    mc_average,
    paper_dropout,
)
from mlreads.dropout.reference import inverted_twin, max_norm_ref


def _net(**kw):
    torch.manual_seed(0)
    return DropoutMLP(MLPConfig(d_in=12, d_hidden=(16, 16), d_out=5, p_keep_input=0.8, p_keep_hidden=0.5, **kw))


def test_weight_scaled_net_equals_nn_dropout_net_at_test_time():
    model = _net().double()
    twin = inverted_twin(model).double().eval()
    x = torch.randn(7, 12, dtype=torch.float64)
    torch.testing.assert_close(model.eval()(x), twin(x), rtol=0, atol=1e-13)


def test_training_outputs_match_nn_dropout_with_the_same_masks():
    """Inverted dropout with mask r: W (r * y / p) = (W / p)(r * y): the paper net with weights W / p, same masks."""
    model = _net().double()
    twin = inverted_twin(model).double().train()
    with torch.no_grad():  # the twin holds p W; the paper net that trains like it holds W (twin weights / p)
        for lin, layer, p in zip([m for m in twin if isinstance(m, nn.Linear)], model.layers, (0.8, 0.5, 0.5),
                                 strict=True):  # fmt: skip
            layer.weight.copy_(lin.weight / p)
    x = torch.randn(7, 12, dtype=torch.float64)
    torch.manual_seed(3)
    ours = model.train()(x)
    torch.manual_seed(3)
    masks_twin = twin(x)
    # nn.Dropout draws bernoulli(1 - p_drop) the same way paper_dropout draws bernoulli(p_keep), so the masks agree
    torch.testing.assert_close(ours, masks_twin, rtol=1e-12, atol=1e-12)


def test_nn_dropout_p_is_the_drop_probability():
    torch.manual_seed(1)
    y = torch.ones(200_000)
    kept_paper = (paper_dropout(y, 0.8, "train") != 0).float().mean()
    kept_torch = (nn.Dropout(p=0.8)(y) != 0).float().mean()
    assert abs(kept_paper - 0.8) < 0.005 and abs(kept_torch - 0.2) < 0.005


def test_train_expectation_equals_weight_scaling():
    """E_r[W (r * y)] = W (p y): the deterministic test net is the mean of the thinned nets for a linear layer."""
    g = torch.Generator().manual_seed(0)
    y = torch.rand(50, dtype=torch.float64)
    mean = torch.stack([paper_dropout(y, 0.5, "train", g) for _ in range(40_000)]).mean(0)
    torch.testing.assert_close(mean, paper_dropout(y, 0.5, "scale"), rtol=0, atol=0.02)


@pytest.mark.parametrize("c", [0.5, 2.0, 3.5])
def test_max_norm_matches_torch_renorm(c):
    g = torch.Generator().manual_seed(2)
    w = torch.randn(32, 20, generator=g, dtype=torch.float64) * torch.rand(32, 1, generator=g, dtype=torch.float64)
    ours = max_norm_(w.clone(), c)
    torch.testing.assert_close(ours, torch.renorm(w, 2, 0, c), rtol=1e-6, atol=0)  # renorm divides by norm + 1e-7
    torch.testing.assert_close(ours, max_norm_ref(w, c), rtol=1e-14, atol=0)
    assert (ours.norm(dim=1) <= c * (1 + 1e-12)).all()


def test_mc_average_converges_to_weight_scaling_for_a_linear_net():
    torch.manual_seed(0)
    model = DropoutMLP(MLPConfig(d_in=12, d_hidden=(), d_out=5, p_keep_input=0.5)).eval()
    x = torch.randn(4, 12)
    g = torch.Generator().manual_seed(0)
    logits_mean = torch.stack([model(x, mode="mc", generator=g) for _ in range(20_000)]).mean(0)
    torch.testing.assert_close(logits_mean, model(x), rtol=0, atol=0.02)
    probs = mc_average(model, x, 5, torch.Generator().manual_seed(1))
    torch.testing.assert_close(probs.sum(-1), torch.ones(4))


def test_mask_is_seeded_by_the_generator():
    a = dropout_mask((100,), 0.5, torch.Generator().manual_seed(7))
    b = dropout_mask((100,), 0.5, torch.Generator().manual_seed(7))
    assert torch.equal(a, b) and 20 < int(a.sum()) < 80

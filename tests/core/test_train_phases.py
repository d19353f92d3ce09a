"""fit with Phases: alternating updates of parts of one model (a GAN's k discriminator steps, then a generator step)."""

import torch
from torch import nn

from mlreads.core.train import Phase, TrainConfig, fit


class Pair(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = nn.Parameter(torch.tensor(1.0))
        self.b = nn.Parameter(torch.tensor(1.0))


def test_phases_move_only_their_parameters_in_order():
    model = Pair()
    seen = []

    def loss_a(m, batch):  # depends on both; only a may move
        seen.append(("a", m.a.item(), m.b.item()))
        return (m.a * m.b - 3.0) ** 2

    def loss_b(m, batch):
        seen.append(("b", m.a.item(), m.b.item()))
        return (m.a + m.b) ** 2

    cfg = TrainConfig(steps=2, lr=0.1, schedule="constant", optimizer="sgd", betas=(0.0, 0.0), grad_clip=None,
                      log_every=1)
    phases = [Phase("a", loss_a, params=lambda m: [m.a], repeats=3), Phase("b", loss_b, params=lambda m: [m.b])]
    res = fit(model, cfg, lambda step, gen: None, phases)

    assert [s[0] for s in seen] == ["a", "a", "a", "b"] * 2
    # within phase a, b never moves; phase b sees a after its three updates
    a_vals = [s for s in seen[:4]]
    assert a_vals[0][2] == a_vals[1][2] == a_vals[2][2] == a_vals[3][2] == 1.0
    a, b = 1.0, 1.0
    for _ in range(3):
        a -= 0.1 * 2 * (a * b - 3.0) * b
    assert abs(seen[3][1] - a) < 1e-6
    b -= 0.1 * 2 * (a + b)
    assert abs(seen[4][2] - b) < 1e-6 and abs(seen[4][1] - a) < 1e-6
    assert {"loss_a", "loss_b"} <= set(res.history[0])


def test_single_loss_is_one_phase_moving_everything():
    model = Pair()
    cfg = TrainConfig(steps=1, lr=0.1, schedule="constant", optimizer="sgd", betas=(0.0, 0.0), grad_clip=None)
    fit(model, cfg, lambda step, gen: None, lambda m, batch: m.a + 2 * m.b)
    torch.testing.assert_close(model.a.detach(), torch.tensor(0.9))
    torch.testing.assert_close(model.b.detach(), torch.tensor(0.8))

"""GAN: Prop 1 and Thm 1 on a grid, the losses of Algorithm 1, maxout."""

import math

import torch
import torch.nn.functional as F

from mlreads.generative import gan


def test_theorem1_minimum_and_optimal_value():
    x = torch.linspace(-8, 8, 20_001, dtype=torch.float64)
    dx = float(x[1] - x[0])
    pd, pg = gan.normal_pdf(x, 2.0, 0.5), gan.normal_pdf(x, 0.0, 1.0)
    d_star = gan.optimal_discriminator(pd, pg)
    # V(D*, G) = C(G) = -log 4 + 2 JSD (Thm 1); any other D is worse (Prop 1)
    c = gan.virtual_training_criterion(pd, pg, dx)
    torch.testing.assert_close(gan.value(d_star, pd, pg, dx), c, rtol=1e-8, atol=1e-8)
    assert gan.value((d_star * 0.9).clamp(0, 1), pd, pg, dx) < c - 1e-3
    assert gan.value(torch.full_like(x, 0.5), pd, pg, dx) < c - 1e-3
    # p_g = p_data: D* = 1/2 and C = -log 4
    torch.testing.assert_close(gan.optimal_discriminator(pd, pd), torch.full_like(x, 0.5))
    assert abs(gan.virtual_training_criterion(pd, pd, dx).item() + math.log(4)) < 1e-10


def test_losses_are_algorithm1_and_section3():
    torch.manual_seed(0)
    model = gan.GAN(gan.GANConfig(d_data=6, d_z=3, d_gen=(8,), d_disc=(5,), n_pieces=2)).eval()
    x, z = torch.rand(4, 6), torch.randn(4, 3)
    dx, dg = torch.sigmoid(model.disc(x)), torch.sigmoid(model.disc(model.gen(z)))
    expected_d = -(torch.log(dx).mean() + torch.log(1 - dg).mean())
    torch.testing.assert_close(gan.d_loss(model, (x, z)), expected_d, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(gan.g_loss(model, (x, z)), -torch.log(dg).mean(), rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(gan.g_loss(model, (x, z), "saturating"), torch.log(1 - dg).mean(), rtol=1e-5, atol=1e-6)


def test_d_step_does_not_backprop_into_g():
    model = gan.GAN(gan.GANConfig(d_data=6, d_z=3, d_gen=(8,), d_disc=(5,), n_pieces=2))
    gan.d_loss(model, (torch.rand(4, 6), torch.randn(4, 3))).backward()
    assert all(p.grad is None for p in model.gen.parameters())


def test_maxout_is_max_over_pieces():
    m = gan.Maxout(4, 3, 2)
    x = torch.randn(5, 4)
    h = F.linear(x, m.linear.weight, m.linear.bias).view(5, 3, 2)
    torch.testing.assert_close(m(x), torch.maximum(h[..., 0], h[..., 1]))


def test_the_simultaneous_update_gives_each_player_exactly_its_own_gradient():
    """joint_loss (the official code's update): backpropagating the sum gives D d_loss's gradient and G g_loss's,
    both from the same D and G before either moves, with the same dropout masks in D (train mode)."""
    cfg = gan.GANConfig(d_data=6, d_z=3, d_gen=(8,), d_disc=(5,), n_pieces=2, noise="uniform")
    torch.manual_seed(0)
    model = gan.GAN(cfg).train()
    x, z = torch.rand(4, 6), model.noise(4, torch.Generator().manual_seed(1))

    def grads(loss_fn, params, seed):
        model.zero_grad(set_to_none=True)
        torch.manual_seed(seed)  # the dropout masks
        loss_fn(model, (x, z)).backward()
        return [p.grad.clone() if p.grad is not None else torch.zeros_like(p) for p in params]

    joint_d = grads(gan.joint_loss, model.disc.parameters(), 7)
    joint_g = grads(gan.joint_loss, model.gen.parameters(), 7)
    d_only = grads(gan.d_loss, model.disc.parameters(), 7)
    torch.manual_seed(7)
    model.disc(x)  # g_loss's D pass draws the masks the joint loss's fake pass drew: after the real pass's
    state = torch.get_rng_state()

    def g_with_those_masks(m, b):
        torch.set_rng_state(state)
        return gan.g_loss(m, b)

    g_only = grads(g_with_those_masks, model.gen.parameters(), 7)
    for a, b in zip(joint_d, d_only, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-7)
    for a, b in zip(joint_g, g_only, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-7)
    assert any(g.abs().sum() > 0 for g in joint_g) and any(g.abs().sum() > 0 for g in joint_d)


def test_uniform_noise_has_unit_variance_and_is_bounded():
    model = gan.GAN(gan.GANConfig(d_data=6, d_z=50, d_gen=(8,), d_disc=(5,), n_pieces=2, noise="uniform"))
    z = model.noise(4000, torch.Generator().manual_seed(0))
    assert z.abs().max() <= math.sqrt(3) and abs(z.var().item() - 1) < 0.02

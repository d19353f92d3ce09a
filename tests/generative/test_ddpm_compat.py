"""DDPM against diffusers' DDPMScheduler: the switches diffusers users reach for first, each supported
(checked against `DDPMScheduler.step` on the same inputs) or refused in one line; unknown string values refused.

    variance_type fixed_small / fixed_large   sigma2 "beta_tilde" / "beta"        (also tests/generative/test_ddpm.py)
    clip_sample, clip_sample_range            clip_x0=True, clip_range
    prediction_type epsilon / sample / v      param "eps" / "x0" / "v"
    set_timesteps(n), timestep_spacing        sample(..., times=schedules.timesteps(T, n, spacing)), ddpm.respace
    beta_schedule                             schedules.beta_schedule
"""

import pytest
import torch

from mlreads.generative import ddpm
from mlreads.generative.schedules import beta_schedule, timesteps

S = ddpm.Schedule(ddpm.linear_betas())
PREDICTION = {"eps": "epsilon", "x0": "sample", "v": "v_prediction"}
VARIANCE = {"beta_tilde": "fixed_small", "beta": "fixed_large"}


def scheduler(float64=True, **kw):
    diffusers = pytest.importorskip("diffusers")
    sch = diffusers.DDPMScheduler(**{"num_train_timesteps": 1000, "beta_start": 1e-4, "beta_end": 0.02,
                                     "beta_schedule": "linear", "clip_sample": False, **kw})  # fmt: skip
    if float64:  # the same formulas evaluated on our float64 schedule
        sch.betas, sch.alphas, sch.alphas_cumprod = S.betas.clone(), S.alphas.clone(), S.alpha_bar.clone()
        sch.one = torch.tensor(1.0, dtype=torch.float64)
    return sch


def inputs(seed, scale=1.0):
    g = torch.Generator().manual_seed(seed)
    return scale * torch.randn(2, 3, 6, generator=g, dtype=torch.float64)


def diffusers_step(sch, out, t_diffusers, xt, seed=5):
    g1, g2 = torch.Generator().manual_seed(seed), torch.Generator().manual_seed(seed)
    theirs = sch.step(out, t_diffusers, xt, generator=g1).prev_sample
    return theirs, torch.randn(xt.shape, generator=g2, dtype=torch.float64)


@pytest.mark.parametrize("param", list(PREDICTION))
@pytest.mark.parametrize("sigma2", list(VARIANCE))
@pytest.mark.parametrize("clip", [None, 1.0, 2.0])
@pytest.mark.parametrize("t", [1, 2, 40, 1000])
def test_step_matches_diffusers(param, sigma2, clip, t):
    sch = scheduler(prediction_type=PREDICTION[param], variance_type=VARIANCE[sigma2], clip_sample=clip is not None,
                    clip_sample_range=clip or 1.0)  # fmt: skip
    xt, out = inputs(t, scale=3.0)  # |x_0 hat| well past 1 and 2, so clipping is active
    theirs, noise = diffusers_step(sch, out, t - 1, xt)
    ours = ddpm.step(S, out, t, xt, noise, sigma2, param, clip_x0=clip is not None, clip_range=clip or 1.0)
    torch.testing.assert_close(ours, theirs, rtol=1e-11, atol=1e-11)
    if clip is not None and t < 1000:  # (at t = T the x_0 coefficient of Eq 7 is ~1e-4: clipping barely shows)
        assert (ours - ddpm.step(S, out, t, xt, noise, sigma2, param)).abs().max() > 1e-3  # clipping mattered


def test_v_is_salimans_and_hos_velocity():
    x0, eps = inputs(0)
    t = torch.tensor([1, 20, 500])
    xt = ddpm.q_sample(S, x0, t, eps)
    ab = S.alpha_bar[t - 1][:, None]
    v = ab.sqrt() * eps - (1 - ab).sqrt() * x0
    torch.testing.assert_close(v, scheduler().get_velocity(x0, eps, t - 1), rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(ddpm.predicted_x0(S, v, xt, t, "v"), x0, rtol=1e-9, atol=1e-9)
    # with the true v (or x_0) the reverse mean is the posterior mean, as with the true eps (Eq 11)
    mean = ddpm.posterior(S, x0, xt, t)[0]
    for param, out in (("v", v), ("x0", x0), ("eps", eps)):
        torch.testing.assert_close(ddpm.reverse_mean(S, out, xt, t, param), mean, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("spacing", ["leading", "trailing", "linspace"])
@pytest.mark.parametrize("n", [1, 3, 7, 10, 16, 50, 333, 999, 1000])
def test_timesteps_are_diffusers_set_timesteps_plus_one(spacing, n):
    sch = scheduler(timestep_spacing=spacing)
    sch.set_timesteps(n)
    assert timesteps(1000, n, spacing) == (sch.timesteps + 1).tolist()


@pytest.mark.parametrize("spacing", ["leading", "trailing", "linspace"])
@pytest.mark.parametrize("sigma2", list(VARIANCE))
@pytest.mark.parametrize("param", ["eps", "v"])
def test_steps_on_fewer_times_match_diffusers(spacing, sigma2, param):
    n = 12
    sch = scheduler(timestep_spacing=spacing, variance_type=VARIANCE[sigma2], prediction_type=PREDICTION[param])
    sch.set_timesteps(n)
    times = timesteps(1000, n, spacing)
    chain = ddpm.respace(S, times)
    torch.testing.assert_close(chain.alpha_bar.flip(0), S.alpha_bar[torch.tensor(times) - 1], rtol=1e-12, atol=0)
    for k, t in zip(range(n, 0, -1), times):
        xt, out = inputs(t)
        theirs, noise = diffusers_step(sch, out, t - 1, xt)
        ours = ddpm.step(chain, out, k, xt, noise, sigma2, param)
        if k == 1 and t > 1 and sigma2 == "beta":
            # diffusers adds sigma z at its last step when that step is not its timestep 0 (trailing spacing);
            # Algorithm 2 (and we) take z = 0 at the last step
            torch.testing.assert_close(ours, ddpm.step(chain, out, 1, xt, torch.zeros_like(xt), sigma2, param))
            continue
        torch.testing.assert_close(ours, theirs, rtol=1e-10, atol=1e-9)


class ToyDenoiser(torch.nn.Module):
    """A fixed function of (x_t, t), so the whole sampling loop can be compared."""

    def forward(self, x, t):
        return torch.tanh(x * 0.7 + (t.float()[:, None] / 1000.0))


@pytest.mark.parametrize("sigma2", list(VARIANCE))
def test_sampling_loop_on_fewer_steps_matches_a_diffusers_loop(sigma2):
    sch = scheduler(float64=False, variance_type=VARIANCE[sigma2], clip_sample=True)
    sch.set_timesteps(25)
    model, shape = ToyDenoiser(), (64, 2)
    x, g = None, torch.Generator().manual_seed(0)
    x = torch.randn(shape, generator=g)  # ours draws x_T first, then one z per step but the last: the same stream
    for t in sch.timesteps:
        x = sch.step(model(x, torch.full((shape[0],), int(t) + 1)), t, x, generator=g).prev_sample
    ours, _ = ddpm.sample(model, S, shape, torch.Generator().manual_seed(0), sigma2, clip_x0=True,
                          times=timesteps(1000, 25))  # fmt: skip
    torch.testing.assert_close(ours, x, rtol=0, atol=1e-4)  # diffusers' schedule is float32, ours float64


@pytest.mark.parametrize("name", ["linear", "scaled_linear", "squaredcos_cap_v2"])
def test_beta_schedules_match_diffusers(name):
    sch = scheduler(float64=False, beta_schedule=name, beta_start=0.00085, beta_end=0.012)
    ours = beta_schedule(name, 1000, 0.00085, 0.012)
    torch.testing.assert_close(ours.float(), sch.betas, rtol=2e-6, atol=1e-9)
    if name == "squaredcos_cap_v2":
        torch.testing.assert_close(beta_schedule("cosine"), ours)


def test_full_sampling_default_is_unchanged_by_times():
    model = ToyDenoiser()
    a, _ = ddpm.sample(model, ddpm.Schedule(ddpm.linear_betas(30)), (5, 2), torch.Generator().manual_seed(1))
    b, _ = ddpm.sample(model, ddpm.Schedule(ddpm.linear_betas(30)), (5, 2), torch.Generator().manual_seed(1),
                       times=list(range(30, 0, -1)))  # fmt: skip
    torch.testing.assert_close(a, b, rtol=0, atol=1e-6)


# ------------------------------------------------------------------------------------------- refusals

x, out, noise = torch.zeros(2, 3), torch.zeros(2, 3), torch.zeros(2, 3)


class Zero(torch.nn.Module):
    def forward(self, x, t):
        return torch.zeros_like(x)


REFUSED = {
    # diffusers' names where ours differ: once read as "the other option", now refused
    "sigma2": lambda: ddpm.step(S, out, 5, x, noise, sigma2="fixed_small"),
    "sigma2 ": lambda: S.sigma2("beta_tilda"),
    "param": lambda: ddpm.step(S, out, 5, x, noise, param="epsilon"),
    "param ": lambda: ddpm.vlb(Zero(), ddpm.Schedule(ddpm.linear_betas(4)), x, torch.Generator(), "sample"),
    "objective": lambda: ddpm.loss_terms(Zero(), S, x, torch.tensor([3, 4]), noise, "eps"),
    "sigma2  ": lambda: ddpm.loss_terms(Zero(), S, x, torch.tensor([3, 4]), noise, "eps_simple", sigma2="small"),
    "sigma2   ": lambda: ddpm.sample(Zero(), S, (2, 3), torch.Generator(), sigma2="learned"),
    "clip_x0": lambda: ddpm.step(S, out, 5, x, noise, param="mu", clip_x0=True),
    "times": lambda: ddpm.sample(Zero(), S, (2, 3), torch.Generator(), param="mu", times=[100, 50]),
    "times ": lambda: ddpm.respace(S, [1001, 3]),
    "beta_schedule": lambda: beta_schedule("sigmoid"),
    "timestep_spacing": lambda: timesteps(1000, 10, "uniform"),
    "n=": lambda: timesteps(1000, 1001),
}  # fmt: skip


@pytest.mark.parametrize("field", list(REFUSED))
def test_unknown_values_are_refused_in_one_line(field):
    with pytest.raises(ValueError, match=field.strip()) as e:
        REFUSED[field]()
    assert "\n" not in str(e.value)

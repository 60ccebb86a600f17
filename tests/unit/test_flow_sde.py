"""The flow-matching SDE step: its log-prob against torch.distributions.Normal, its
a → 0 limit against diffusers' Euler step, and its marginal against the closed form
for point-mass data."""
import math

import torch

from adascope_ray.core.sde import flow_alpha_bar, flow_sde_step_with_logprob


def test_log_prob_is_the_normal_density_of_the_sample():
    g = torch.Generator().manual_seed(0)
    x, v = torch.randn(3, 4, 2, 2, generator=g), torch.randn(3, 4, 2, 2, generator=g)
    out = flow_sde_step_with_logprob(v, x, 0.6, 0.5, noise_level=0.7, noise=torch.randn(3, 4, 2, 2, generator=g))
    ref = torch.distributions.Normal(out.mean, out.std.expand_as(out.mean)).log_prob(out.prev_sample)
    torch.testing.assert_close(out.log_prob, ref.mean(dim=(1, 2, 3)))
    # the hand numbers for σ = 0.6, σ_next = 0.5, a = 0.7: s = 0.7·√1.5 = 0.857321, std = s·√0.1 = 0.271109
    assert math.isclose(float(out.std.flatten()[0]), 0.7 * math.sqrt(1.5) * math.sqrt(0.1), rel_tol=1e-6)


def test_rescoring_the_sample_gives_the_same_log_prob_per_row():
    g = torch.Generator().manual_seed(1)
    x, v = torch.randn(4, 2, 3, 3, generator=g), torch.randn(4, 2, 3, 3, generator=g)
    sig, nxt = torch.tensor([0.9, 0.7, 0.5, 0.3]), torch.tensor([0.8, 0.6, 0.4, 0.2])  # a different step per row
    first = flow_sde_step_with_logprob(v, x, sig, nxt, 1.0)
    again = flow_sde_step_with_logprob(v, x, sig, nxt, 1.0, prev_sample=first.prev_sample)
    torch.testing.assert_close(again.log_prob, first.log_prob)


def test_small_noise_level_approaches_diffusers_euler_step():
    from diffusers import FlowMatchEulerDiscreteScheduler

    sched = FlowMatchEulerDiscreteScheduler(shift=3.0)
    sched.set_timesteps(10)
    g = torch.Generator().manual_seed(2)
    x, v = torch.randn(1, 4, 4, 4, generator=g), torch.randn(1, 4, 4, 4, generator=g)
    k = 3
    euler = sched.step(v, sched.timesteps[k], x).prev_sample
    out = flow_sde_step_with_logprob(v, x, sched.sigmas[k], sched.sigmas[k + 1], noise_level=1e-4,
                                     noise=torch.zeros_like(x))
    torch.testing.assert_close(out.prev_sample, euler, atol=1e-6, rtol=1e-5)


def test_point_mass_marginal_is_kept():
    """Data x0 = 2 (one point): x_σ ~ N(2(1−σ), σ²) and the exact velocity is
    v(x) = (x − x0)/σ. One small SDE step from σ = 0.5 must give N(2(1−σ'), σ'²)."""
    torch.manual_seed(0)
    x0, sig, nxt, n = 2.0, 0.5, 0.49, 400_000
    x = (1 - sig) * x0 + sig * torch.randn(n, 1, 1, 1, dtype=torch.float64)
    out = flow_sde_step_with_logprob((x - x0) / sig, x, sig, nxt, noise_level=1.0)
    y = out.prev_sample.flatten()
    assert abs(float(y.mean()) - (1 - nxt) * x0) < 4e-3     # 1.02; MC error ~ 0.49/√n = 8e-4
    assert abs(float(y.std()) - nxt) < 4e-3                   # 0.49; Euler–Maruyama error O(dt)


def test_flow_alpha_bar_matches_the_snr():
    sigma = torch.tensor([0.0, 0.5, 0.8, 1.0])
    # SNR of x_σ is ((1−σ)/σ)²; ᾱ/(1−ᾱ) must equal it: 0.5 -> ᾱ 0.5; 0.8 -> 0.04/0.68
    torch.testing.assert_close(flow_alpha_bar(sigma), torch.tensor([1.0, 0.5, 0.04 / 0.68, 0.0]))


def test_the_ode_step_is_diffusers_euler_step():
    from diffusers import FlowMatchEulerDiscreteScheduler

    from adascope_ray.core.sde import flow_ode_step

    sched = FlowMatchEulerDiscreteScheduler(shift=3.0)
    sched.set_timesteps(10)
    g = torch.Generator().manual_seed(4)
    x, v = torch.randn(2, 4, 4, 4, generator=g), torch.randn(2, 4, 4, 4, generator=g)
    for k in (0, 5, 9):
        sched._step_index = None  # the scheduler finds the step from its timestep
        euler = sched.step(v, sched.timesteps[k], x).prev_sample
        out = flow_ode_step(v, x, sched.sigmas[k], sched.sigmas[k + 1])
        torch.testing.assert_close(out.prev_sample, euler, atol=1e-6, rtol=1e-5)
        torch.testing.assert_close(out.x0_pred, x - sched.sigmas[k] * v)
        assert (out.log_prob == 0).all()

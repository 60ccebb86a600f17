"""The DDIM-with-eta step and its log-prob, against torch.distributions.Normal and
against diffusers' own DDIMScheduler.step (a second implementation)."""
import math

import pytest
import torch
from diffusers import DDIMScheduler

from adascope_ray.core.sde import ddim_step_with_logprob, to_epsilon, to_x0


def sd_scheduler():
    return DDIMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                         clip_sample=False, set_alpha_to_one=False, steps_offset=1)


@pytest.mark.parametrize("k", [0, 3, 10, 19])
def test_step_matches_diffusers_and_normal_log_prob(k):
    sch = sd_scheduler()
    sch.set_timesteps(20)
    t = int(sch.timesteps[k])
    prev_t = t - 1000 // 20
    a_t = sch.alphas_cumprod[t]
    a_prev = sch.alphas_cumprod[prev_t] if prev_t >= 0 else sch.final_alpha_cumprod
    g = torch.Generator().manual_seed(k)
    x_t, eps, z = (torch.randn(3, 4, 8, 8, generator=g) for _ in range(3))

    ours = ddim_step_with_logprob(eps, x_t, a_t, a_prev, eta=1.0, noise=z)
    ref = sch.step(eps, t, x_t, eta=1.0, variance_noise=z).prev_sample
    torch.testing.assert_close(ours.prev_sample, ref, rtol=1e-5, atol=1e-5)
    # σ_t² is diffusers' DDIM variance times η²
    torch.testing.assert_close(ours.std.flatten()[0] ** 2, sch._get_variance(t, prev_t).float(), rtol=1e-5, atol=0)

    normal = torch.distributions.Normal(ours.mean, ours.std)
    expected = normal.log_prob(ours.prev_sample).mean(dim=(1, 2, 3))
    torch.testing.assert_close(ours.log_prob, expected, rtol=1e-5, atol=1e-5)


def test_scoring_a_given_sample_uses_it():
    x_t, eps, x_prev = torch.ones(2, 1, 2, 2), torch.zeros(2, 1, 2, 2), torch.full((2, 1, 2, 2), 0.3)
    out = ddim_step_with_logprob(eps, x_t, torch.tensor([0.5, 0.5]), torch.tensor([0.8, 0.8]), 1.0, prev_sample=x_prev)
    assert torch.equal(out.prev_sample, x_prev)
    # hand-worked: ε̂ = 0 so x̂0 = 1/√0.5; μ = √0.8 x̂0 = √1.6; σ² = (0.2/0.5)(1 − 0.5/0.8) = 0.15
    mu, var = math.sqrt(1.6), 0.15
    lp = -((0.3 - mu) ** 2) / (2 * var) - 0.5 * math.log(var) - 0.5 * math.log(2 * math.pi)
    torch.testing.assert_close(out.log_prob, torch.tensor([lp, lp]), rtol=1e-5, atol=1e-5)


def test_per_row_alphas_equal_separate_calls():
    g = torch.Generator().manual_seed(0)
    x, e, z = (torch.randn(2, 4, 4, 4, generator=g) for _ in range(3))
    a_t, a_p = torch.tensor([0.3, 0.7]), torch.tensor([0.4, 0.9])
    both = ddim_step_with_logprob(e, x, a_t, a_p, 0.7, noise=z)
    for i in range(2):
        one = ddim_step_with_logprob(e[i:i + 1], x[i:i + 1], a_t[i], a_p[i], 0.7, noise=z[i:i + 1])
        torch.testing.assert_close(both.log_prob[i:i + 1], one.log_prob)


def test_eta_zero_is_refused():
    x = torch.zeros(1, 1, 2, 2)
    with pytest.raises(ValueError, match="eta"):
        ddim_step_with_logprob(x, x, 0.5, 0.6, eta=0.0)


def test_v_prediction_to_epsilon():
    # v = √ᾱ ε − √(1−ᾱ) x0 and x_t = √ᾱ x0 + √(1−ᾱ) ε  =>  ε = √ᾱ v + √(1−ᾱ) x_t
    g = torch.Generator().manual_seed(1)
    x0, eps = torch.randn(2, 3, generator=g), torch.randn(2, 3, generator=g)
    a = 0.36
    x_t = math.sqrt(a) * x0 + math.sqrt(1 - a) * eps
    v = math.sqrt(a) * eps - math.sqrt(1 - a) * x0
    torch.testing.assert_close(to_epsilon(v, x_t, a, "v_prediction"), eps)


@pytest.mark.parametrize("a", [0.0, 0.36])
def test_v_prediction_to_x0_is_finite_at_zero_snr(a):
    # x_t = √ᾱ x0 + √(1−ᾱ) ε, v = √ᾱ ε − √(1−ᾱ) x0  =>  x0 = √ᾱ x_t − √(1−ᾱ) v; at ᾱ = 0, x0 = −v
    g = torch.Generator().manual_seed(2)
    x0, eps = torch.randn(2, 3, generator=g), torch.randn(2, 3, generator=g)
    x_t = math.sqrt(a) * x0 + math.sqrt(1 - a) * eps
    v = math.sqrt(a) * eps - math.sqrt(1 - a) * x0
    torch.testing.assert_close(to_x0(v, x_t, a, "v_prediction"), x0)
    if a > 0:
        torch.testing.assert_close(to_x0(eps, x_t, a, "epsilon"), x0)


def test_zero_terminal_snr_first_step_matches_diffusers():
    # diffusers' DDIM with rescaled betas (ᾱ_999 = 0) and v-prediction, trailing spacing:
    # its first step is x̂0 = −v, ε̂ = x_t (at η = 1 diffusers takes the root of a rounding
    # negative 1 − ᾱ_prev − σ² and returns NaN; ours clamps it, so compare at η = 0.8)
    sch = DDIMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", clip_sample=False,
                        set_alpha_to_one=False, prediction_type="v_prediction", rescale_betas_zero_snr=True,
                        timestep_spacing="trailing")
    sch.set_timesteps(20)
    t, prev_t = int(sch.timesteps[0]), int(sch.timesteps[1])
    a_t, a_prev = sch.alphas_cumprod[t], sch.alphas_cumprod[prev_t]
    assert t == 999 and float(a_t) == 0.0
    g = torch.Generator().manual_seed(3)
    x_t, v, z = (torch.randn(2, 4, 8, 8, generator=g) for _ in range(3))
    eps, x0 = to_epsilon(v, x_t, a_t, "v_prediction"), to_x0(v, x_t, a_t, "v_prediction")
    ours = ddim_step_with_logprob(eps, x_t, a_t, a_prev, eta=0.8, noise=z, x0_pred=x0)
    ref = sch.step(v, t, x_t, eta=0.8, variance_noise=z).prev_sample
    assert torch.isfinite(ours.log_prob).all()
    torch.testing.assert_close(ours.prev_sample, ref, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("k", [0, 7, 19])
def test_the_eta_zero_step_is_diffusers_deterministic_ddim(k):
    # SD's schedule (ε-prediction) and the zero-terminal-SNR one (v-prediction, x̂0 given)
    from adascope_ray.core.sde import ddim_step_deterministic

    for sch, kind in ((sd_scheduler(), "epsilon"),
                      (DDIMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", clip_sample=False,
                                     set_alpha_to_one=False, prediction_type="v_prediction", rescale_betas_zero_snr=True,
                                     timestep_spacing="trailing"), "v_prediction")):
        sch.set_timesteps(20)
        t = int(sch.timesteps[k])
        prev_t = int(sch.timesteps[k + 1]) if k + 1 < 20 else -1
        a_t = sch.alphas_cumprod[t]
        a_prev = sch.alphas_cumprod[prev_t] if prev_t >= 0 else sch.final_alpha_cumprod
        g = torch.Generator().manual_seed(k)
        x_t, out = torch.randn(2, 4, 8, 8, generator=g), torch.randn(2, 4, 8, 8, generator=g)
        eps, x0 = to_epsilon(out, x_t, a_t, kind), to_x0(out, x_t, a_t, kind)
        ours = ddim_step_deterministic(eps, x_t, a_t, a_prev, x0)
        ref = sch.step(out, t, x_t, eta=0.0)
        torch.testing.assert_close(ours.prev_sample, ref.prev_sample, rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(ours.x0_pred, ref.pred_original_sample, rtol=1e-5, atol=1e-5)
        assert (ours.log_prob == 0).all() and (ours.std == 0).all()

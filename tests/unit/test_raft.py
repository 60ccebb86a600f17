"""core/raft.py against hand-worked values and diffusers' own noising and velocity."""
import math

import numpy as np
import torch
from diffusers import DDPMScheduler

from adascope_ray.core.raft import denoising_loss, denoising_target, noised, ranked_keep
from adascope_ray.core.sde import to_x0


def test_each_group_keeps_its_best_and_a_tied_group_keeps_none():
    r = np.array([0.2, 0.9, 0.5, 0.9, 0.3, 0.3, 0.1, 0.7, 0.7, 0.4])
    g = np.array([0, 0, 0, 0, 1, 1, 2, 2, 2, 2])
    # group 0: the two 0.9s (rows 1, 3); group 1 ties; group 2: the two 0.7s (rows 7, 8)
    assert np.flatnonzero(ranked_keep(r, g, 2)).tolist() == [1, 3, 7, 8]
    # top 1: a tie inside a group goes to the earlier row
    assert np.flatnonzero(ranked_keep(r, g, 1)).tolist() == [1, 7]
    assert np.flatnonzero(ranked_keep(r, g, 3)).tolist() == [1, 2, 3, 7, 8, 9]
    # a sample that may not be kept is neither kept nor ranked: row 1 out, row 3 leads;
    # row 4 out leaves group 1 with one sample, nothing to rank
    valid = np.ones(10, bool)
    valid[[1, 4]] = False
    assert np.flatnonzero(ranked_keep(r, g, 1, valid)).tolist() == [3, 7]


def test_noising_and_the_v_target_by_hand():
    x0, eps = torch.full((1, 1, 1, 1), 1.0), torch.full((1, 1, 1, 1), 2.0)
    # ᾱ = 0.25: x_k = 0.5·1 + √0.75·2, v = 0.5·2 − √0.75·1
    assert math.isclose(float(noised(x0, eps, 0.25)), 0.5 + math.sqrt(0.75) * 2, rel_tol=1e-6)
    assert math.isclose(float(denoising_target(x0, eps, 0.25, "v_prediction")), 1.0 - math.sqrt(0.75), rel_tol=1e-6)
    assert float(denoising_target(x0, eps, 0.25, "epsilon")) == 2.0
    # at ᾱ = 0 (zero terminal SNR) x_k is pure noise and v = −x0
    assert float(noised(x0, eps, 0.0)) == 2.0 and float(denoising_target(x0, eps, 0.0, "v_prediction")) == -1.0


def test_noising_and_velocity_match_diffusers_and_the_exact_target_recovers_x0():
    sch = DDPMScheduler(num_train_timesteps=1000)
    gen = torch.Generator().manual_seed(0)
    x0, eps = torch.randn(3, 4, 8, 8, generator=gen), torch.randn(3, 4, 8, 8, generator=gen)
    t = torch.tensor([999, 500, 20])
    a = sch.alphas_cumprod[t]                                             # (3,)
    torch.testing.assert_close(noised(x0, eps, a), sch.add_noise(x0, eps, t), rtol=1e-5, atol=1e-5)
    v = denoising_target(x0, eps, a, "v_prediction")
    torch.testing.assert_close(v, sch.get_velocity(x0, eps, t), rtol=1e-5, atol=1e-5)
    # a model that outputs the target exactly has Tweedie's x̂0 = x0 (core/sde.py's inverse)
    torch.testing.assert_close(to_x0(v, noised(x0, eps, a), a, "v_prediction"), x0, rtol=1e-4, atol=1e-4)


def test_the_loss_is_the_mean_square_per_term():
    out = torch.tensor([[1.0, 2.0], [3.0, 4.0]]).view(2, 1, 1, 2)
    np.testing.assert_allclose(denoising_loss(out, torch.zeros_like(out)).numpy(), [2.5, 12.5])
    np.testing.assert_allclose(denoising_loss(out, out).numpy(), [0.0, 0.0])

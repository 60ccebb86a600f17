"""Window signals against the closed form of Theorem 2 (Monte Carlo) and hand values."""
import math

import numpy as np
import pytest
import torch

from adascope_ray.core import signals as sig


def sd15_alpha_bars(k_steps=50):
    """SD1.5's scaled-linear schedule, computed here from its definition."""
    betas = np.linspace(math.sqrt(0.00085), math.sqrt(0.012), 1000) ** 2
    ac = np.cumprod(1 - betas)
    stride = 1000 // k_steps
    ts = np.arange(k_steps)[::-1] * stride + 1  # 981, 961, ..., 1 (steps_offset = 1)
    return torch.tensor(ac[ts])


@pytest.mark.parametrize("a_t,a_tau", [(0.9, 0.5), (0.6, 0.1), (0.99, 0.9)])
def test_pearson_matches_theorem2_same_index(a_t, a_tau):
    # x0 ~ N(0, s² I) over many pixels; x_t, then x_{t+τ} | x_t by the Markov step.
    g = torch.Generator().manual_seed(0)
    s2, n = 0.5, 200_000
    x0 = math.sqrt(s2) * torch.randn(4, n, generator=g)
    x_t = math.sqrt(a_t) * x0 + math.sqrt(1 - a_t) * torch.randn(4, n, generator=g)
    x_tau = math.sqrt(a_tau / a_t) * x_t + math.sqrt(1 - a_tau / a_t) * torch.randn(4, n, generator=g)
    mc = sig.pearson(x_t, x_tau).mean().item()
    closed = sig.theorem2_correlation(a_t, a_tau, s2, s2, s2, same_index=True)
    assert abs(mc - closed) < 5e-3


def test_theorem2_cross_index_monte_carlo():
    # two coordinates with Σ = [[1, .6], [.6, 2]]: Corr(x_t^0, x_{t+τ}^1) over draws
    g = torch.Generator().manual_seed(1)
    n, a_t, a_tau = 400_000, 0.7, 0.3
    L = torch.linalg.cholesky(torch.tensor([[1.0, 0.6], [0.6, 2.0]]))
    x0 = torch.randn(n, 2, generator=g) @ L.T
    x_t = math.sqrt(a_t) * x0 + math.sqrt(1 - a_t) * torch.randn(n, 2, generator=g)
    x_tau = math.sqrt(a_tau / a_t) * x_t + math.sqrt(1 - a_tau / a_t) * torch.randn(n, 2, generator=g)
    mc = sig.pearson(x_t[None, :, 0], x_tau[None, :, 1]).item()
    closed = sig.theorem2_correlation(a_t, a_tau, 1.0, 2.0, 0.6, same_index=False)
    assert abs(mc - closed) < 5e-3


def test_structural_trace_on_gaussian_trajectory_matches_theorem2():
    """Block-constant x0 (8x8 blocks, variance s²) plus i.i.d. pixel noise: after the
    8x8 pool the band has signal variance s² and noise variance 1/64, i.e. Theorem 2
    with Σ = 64 s² (correlation is scale-free). S_k correlates step k with the final step."""
    g = torch.Generator().manual_seed(2)
    s2, b, side = 0.5, 64, 128
    a = torch.tensor([0.02, 0.05, 0.2, 0.5, 0.9, 0.98])  # noisiest first; last = "final"
    blocks = math.sqrt(s2) * torch.randn(b, 4, side // 8, side // 8, generator=g)
    x0 = blocks.repeat_interleave(8, -1).repeat_interleave(8, -2)
    # forward chain backwards in k: x_final first, then noisier steps from it
    xs = [None] * len(a)
    xs[-1] = a[-1].sqrt() * x0 + (1 - a[-1]).sqrt() * torch.randn(x0.shape, generator=g)
    for k in range(len(a) - 2, -1, -1):
        r = a[k] / a[k + 1]
        xs[k] = r.sqrt() * xs[k + 1] + (1 - r).sqrt() * torch.randn(x0.shape, generator=g)
    traj = torch.stack(xs, 1)                                   # (B, K, C, H, W)
    s = sig.structural_trace(traj, pool=8).mean(0)
    for k in range(len(a)):
        closed = sig.theorem2_correlation(float(a[-1]), float(a[k]), 64 * s2, 64 * s2, 64 * s2, True)
        assert abs(s[k].item() - closed) < 0.02, (k, s[k].item(), closed)


def test_schedule_prior_is_squared_correlation_with_x0():
    g = torch.Generator().manual_seed(3)
    s2, noise_var, n = 0.7, 1 / 64, 300_000
    for a in (0.01, 0.1, 0.6):
        x0 = math.sqrt(s2) * torch.randn(1, n, generator=g)
        x = math.sqrt(a) * x0 + math.sqrt((1 - a) * noise_var) * torch.randn(1, n, generator=g)
        mc = sig.pearson(x, x0).item() ** 2
        psi = sig.schedule_prior(torch.tensor([a]), s2, noise_var).item()
        assert abs(mc - psi) < 5e-3


def test_prior_bounds_on_sd15_schedule():
    # Hand-derived: ψ_pooled ≥ ½ ⇔ ᾱ·0.5 ≥ (1−ᾱ)/64 ⇔ ᾱ ≥ 1/33;
    #               ψ_full ≥ 0.9 ⇔ 0.5ᾱ ≥ 9(1−ᾱ) ⇔ ᾱ ≥ 18/19.
    a = sd15_alpha_bars(50)
    k_lo_hand = int(np.argmax(a.numpy() >= 1 / 33))
    k_hi_hand = int(np.argmax(a.numpy() >= 18 / 19))
    assert (k_lo_hand, k_hi_hand) == (8, 47)  # the values docs/adascope.md quotes
    assert sig.prior_bounds(a, 0.5, 0.5, pool=8, lo=0.5, hi=0.9) == (8, 47)


def test_prior_bounds_never_reached_is_k():
    a = torch.tensor([0.001, 0.002, 0.003])
    assert sig.prior_bounds(a, 0.5, 0.5, pool=8) == (3, 3)


def test_convergence_and_semantic_hand_values():
    a = torch.tensor([[1.0, 2.0, 0.0, -1.0]]).reshape(1, 1, 1, 2, 2)
    traj = torch.cat([a, 2 * a, 2 * a, -a], dim=1)            # (1, 4, 1, 2, 2)
    d = sig.convergence_trace(traj)[0]
    # D_1 = ‖2a − a‖/‖2a‖ = ½; D_2 = 0; D_3 = ‖−a − 2a‖/‖−a‖ = 3
    assert math.isinf(d[0]) and d[1:].tolist() == pytest.approx([0.5, 0.0, 3.0])
    c = sig.semantic_trace_fallback(traj)[0]
    assert c.tolist() == pytest.approx([-1.0, -1.0, -1.0, 1.0], abs=1e-6)


def test_probe_steps_cover_every_pth_step_and_the_last():
    assert sig.probe_steps(16, 4) == [0, 4, 8, 12, 15]
    assert sig.probe_steps(5, 2) == [0, 2, 4]
    assert sig.probe_steps(3, 10) == [0, 2]
    assert sig.probe_steps(4, 1) == [0, 1, 2, 3]


def test_embedding_semantic_trace_is_the_cosine_held_to_the_next_probe():
    # one sample, 5 steps probed at 0, 2, 4; embeddings not normalised (the trace normalises)
    probes = [0, 2, 4]
    final = torch.tensor([[3.0, 4.0]])                        # unit: (0.6, 0.8)
    emb = torch.tensor([[[1.0, 0.0], [0.0, 2.0], [6.0, 8.0]]])  # cos: 0.6, 0.8, 1.0
    got = sig.semantic_trace_embedding(emb, final, probes, 5)
    assert got.shape == (1, 5)
    np.testing.assert_allclose(got[0].numpy(), [0.6, 0.6, 0.8, 0.8, 1.0], atol=1e-6)
    # an opposite embedding gives -1, an orthogonal one 0
    emb2 = torch.tensor([[[-3.0, -4.0], [4.0, -3.0], [3.0, 4.0]]])
    np.testing.assert_allclose(sig.semantic_trace_embedding(emb2, final, probes, 5)[0].numpy(),
                               [-1.0, -1.0, 0.0, 0.0, 1.0], atol=1e-6)

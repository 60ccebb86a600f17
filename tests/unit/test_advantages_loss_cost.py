"""Advantages, the clipped loss and cost accounting against hand-worked values."""
import math

import numpy as np
import pytest
import torch

from adascope_ray.core.advantages import PerPromptStatTracker, group_advantages
from adascope_ray.core.cost import cost_fwd_equiv, learner_passes, sampler_passes
from adascope_ray.core.loss import clipped_pg_loss


def test_group_advantages_hand_worked():
    # group 0: [1,2,3,4], mean 2.5, population std √1.25 = 1.11803
    #   A = (r − 2.5)/(1.11803 + 1e-4) = [−1.34152, −0.44717, 0.44717, 1.34152]
    # group 1: [2, 2] has zero spread → dropped; zero_std_ratio = 2/6
    adv = group_advantages(np.array([1, 2, 3, 4, 2, 2.0]), np.array([0, 0, 0, 0, 1, 1]))
    assert adv.values[:4] == pytest.approx([-1.34152, -0.44717, 0.44717, 1.34152], abs=1e-4)
    assert adv.valid.tolist() == [True] * 4 + [False] * 2
    assert adv.values[4:].tolist() == [0, 0]
    assert adv.zero_std_ratio == pytest.approx(1 / 3)


def test_group_advantages_clip():
    # [0, 0, 0, 10]: mean 2.5, std √18.75 = 4.3301; 10 → 7.5/4.3302 = 1.732 → clipped to 1.5
    adv = group_advantages(np.array([0, 0, 0, 10.0]), np.zeros(4, int), clip=1.5)
    assert adv.values.tolist() == pytest.approx([-0.57735, -0.57735, -0.57735, 1.5], abs=1e-4)


def test_tracker_uses_batch_stats_until_min_count_then_history():
    tr = PerPromptStatTracker(buffer_size=4, min_count=3)
    # "a" has 2 rewards < min_count: batch stats over [0, 2, 10, 20]: mean 8,
    # deviations −8, −6, 2, 12 → variance (64+36+4+144)/4 = 62, std 7.87401
    a1 = tr.update(["a", "a", "b", "b"], np.array([0, 2, 10, 20.0]), std_eps=0.0)
    assert a1.values.tolist() == pytest.approx([-8 / 7.87401, -6 / 7.87401, 2 / 7.87401, 12 / 7.87401], abs=1e-4)
    # now "a" holds [0, 2, 4, 6] (4 ≥ 3): mean 3, std √5 = 2.23607
    a2 = tr.update(["a", "a"], np.array([4, 6.0]), std_eps=0.0)
    assert a2.values.tolist() == pytest.approx([1 / 2.23607, 3 / 2.23607], abs=1e-4)
    # buffer keeps the last 4: [4, 6, 6, 6] → mean 5.5, std √0.75
    a3 = tr.update(["a", "a"], np.array([6, 6.0]), std_eps=0.0)
    assert a3.values.tolist() == pytest.approx([0.5 / math.sqrt(0.75)] * 2, abs=1e-4)


def test_clipped_loss_hand_worked():
    # r = [1, 1.5, 0.5], A = [1, 1, −1], ε = 0.2
    # per pair max(−A r, −A clip(r)): max(−1, −1) = −1; max(−1.5, −1.2) = −1.2; max(0.5, 0.8) = 0.8
    # loss = (−1 − 1.2 + 0.8)/3 = −0.46667; clipfrac = 2/3
    old = torch.zeros(3)
    logp = torch.tensor([0.0, math.log(1.5), math.log(0.5)], requires_grad=True)
    loss, st = clipped_pg_loss(logp, old, torch.tensor([1.0, 1.0, -1.0]), 0.2)
    assert loss.item() == pytest.approx(-0.466667, abs=1e-5)
    assert st.clipfrac == pytest.approx(2 / 3)
    loss.backward()
    # only the unclipped pair carries gradient: d(−A r)/d logp = −A r /3 = −1/3
    assert logp.grad.tolist() == pytest.approx([-1 / 3, 0.0, 0.0])


def test_decoupled_loss_hand_worked():
    # prox = [0, 0, 0, 0]; behaviour log-probs b = [0, −ln 2, ln 2, −ln 4] give
    # w = min(π_prox / π_b, c = 3) = [1, 2, 0.5, min(4, 3) = 3]
    # r = π_θ / π_prox = [1, 1.5, 0.5, 1], A = [1, 1, −1, 2], ε = 0.2
    # terms max(−A r, −A clip(r)) = [−1, −1.2, 0.8, −2]; weighted [−1, −2.4, 0.4, −6]
    # loss = (−1 − 2.4 + 0.4 − 6)/4 = −2.25; clipfrac 2/4; 1 of 4 weights capped
    prox = torch.zeros(4)
    behaviour = torch.tensor([0.0, -math.log(2), math.log(2), -math.log(4)])
    logp = torch.tensor([0.0, math.log(1.5), math.log(0.5), 0.0], requires_grad=True)
    adv = torch.tensor([1.0, 1.0, -1.0, 2.0])
    loss, st = clipped_pg_loss(logp, prox, adv, 0.2, behaviour_log_prob=behaviour, weight_cap=3.0)
    assert loss.item() == pytest.approx(-2.25, abs=1e-5)
    assert st.clipfrac == pytest.approx(0.5) and st.is_capped == pytest.approx(0.25)
    assert st.is_weight_mean == pytest.approx((1 + 2 + 0.5 + 3) / 4) and st.is_weight_max == pytest.approx(3.0)
    loss.backward()
    # unclipped pairs 0 and 3 carry gradient w · (−A r) / N: −1/4 and 3 · (−2)/4; the weight carries none
    assert logp.grad.tolist() == pytest.approx([-0.25, 0.0, 0.0, -1.5])


def test_decoupled_loss_of_fresh_samples_is_the_plain_loss_bit_for_bit():
    g = torch.Generator().manual_seed(0)
    old, logp, adv = (torch.randn(64, generator=g) * s for s in (1e-3, 1e-3, 1.0))
    plain, _ = clipped_pg_loss(logp, old, adv, 1e-4)
    decoupled, st = clipped_pg_loss(logp, old, adv, 1e-4, behaviour_log_prob=old.clone(), weight_cap=2.0)
    assert decoupled.item() == plain.item() and st.is_weight_mean == 1.0 and st.is_capped == 0.0


def test_cost_hand_worked():
    # docs: K = 50 with CFG: full DDPO = 100 (sampler) + 300 (learner) = 400 per trajectory
    assert cost_fwd_equiv(sampler_passes(1, 50, True), learner_passes(50, True) // 3) == 400
    assert sampler_passes(1, 50, True) + learner_passes(50, True) == 400
    # AdaScope with |W| = 15: 100 + 90 = 190
    assert sampler_passes(1, 50, True) + learner_passes(15, True) == 190
    assert sampler_passes(4, 20, False) == 80 and learner_passes(3, False, epochs=2) == 18


def test_kl_to_reference_is_the_gaussian_kl_per_dimension_and_only_moves_the_policy():
    import torch
    from torch.distributions import Normal, kl_divergence

    from adascope_ray.core.loss import kl_to_reference

    g = torch.Generator().manual_seed(0)
    mu = torch.randn(3, 2, 4, 4, generator=g, requires_grad=True)
    mu_ref = torch.randn(3, 2, 4, 4, generator=g, requires_grad=True)
    std = torch.tensor([0.5, 1.0, 2.0]).view(3, 1, 1, 1)
    ref = kl_divergence(Normal(mu, std.expand_as(mu)), Normal(mu_ref, std.expand_as(mu))).flatten(1).mean(1)
    got = kl_to_reference(mu, mu_ref, std)
    torch.testing.assert_close(got, ref)
    got.sum().backward()
    assert mu.grad is not None and mu_ref.grad is None  # the reference is a constant
    torch.testing.assert_close(kl_to_reference(mu_ref, mu_ref, std), torch.zeros(3), atol=0, rtol=0)

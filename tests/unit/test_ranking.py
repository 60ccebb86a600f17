import math

import numpy as np
import torch

from adascope_ray.core.ranking import group_pairs, pairwise_ranking_loss, ranking_accuracy


def test_pairs_stay_within_groups_and_respect_the_margin():
    r = np.array([0.9, 0.1, 0.5, 0.5, 0.2, 0.25])
    g = np.array([0, 0, 0, 1, 1, 1])
    i, j = group_pairs(r, g)
    # group 0: 0>1, 0>2, 2>1 ; group 1: 3>4, 3>5, 5>4 — never across groups
    assert sorted(zip(i.tolist(), j.tolist())) == [(0, 1), (0, 2), (2, 1), (3, 4), (3, 5), (5, 4)]
    i, j = group_pairs(r, g, margin=0.1)   # 0.25 vs 0.2 and 0.5 vs 0.25... only gaps > 0.1
    assert sorted(zip(i.tolist(), j.tolist())) == [(0, 1), (0, 2), (2, 1), (3, 4), (3, 5)]


def test_loss_and_gradient_against_hand_values():
    s = torch.tensor([2.0, 0.0, 1.0], requires_grad=True)
    i, j = np.array([0, 2]), np.array([1, 1])   # s_0 − s_1 = 2, s_2 − s_1 = 1
    loss = pairwise_ranking_loss(s, i, j)
    want = (math.log1p(math.exp(-2.0)) + math.log1p(math.exp(-1.0))) / 2
    assert abs(float(loss) - want) < 1e-6
    loss.backward()
    sig = lambda z: 1 / (1 + math.exp(-z))  # noqa: E731
    # ∂/∂s_0 = −σ(−2)/2, ∂/∂s_2 = −σ(−1)/2, ∂/∂s_1 = (σ(−2) + σ(−1))/2
    want_g = [-sig(-2) / 2, (sig(-2) + sig(-1)) / 2, -sig(-1) / 2]
    assert np.allclose(s.grad.numpy(), want_g, atol=1e-6)


def test_empty_pairs_give_zero_loss_and_nan_accuracy():
    s = torch.zeros(3, requires_grad=True)
    loss = pairwise_ranking_loss(s, np.array([], int), np.array([], int))
    loss.backward()
    assert float(loss) == 0.0 and float(s.grad.abs().sum()) == 0.0
    assert math.isnan(ranking_accuracy(np.zeros(3), np.array([], int), np.array([], int)))


def test_accuracy_counts_ties_as_half():
    s = np.array([1.0, 0.0, 1.0, 1.0])
    i, j = np.array([0, 1, 2]), np.array([1, 0, 3])   # right, wrong, tie
    assert ranking_accuracy(s, i, j) == 0.5

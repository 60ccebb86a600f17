"""advantage.normalise=each_part: core/advantages.py's each_part_advantages against
hand-worked groups, the learner's parts of a reward with checks, and the config's refusal."""
from types import SimpleNamespace

import numpy as np
import pytest

from adascope_ray.config import AdvantageConfig, RewardsConfig
from adascope_ray.core.advantages import each_part_advantages, group_advantages
from adascope_ray.learner.learner import Learner

R3 = 3 ** 0.5


def test_each_part_hand_worked_against_the_total():
    # group 0: part a = [1, 0, 1, 1] (mean .75, std √3/4): z = [1, −3, 1, 1] / √3;
    #          part b = [.2, .2, .8, .2] (mean .35, std √3 · .15): z = [−1, −1, 3, −1] / √3.
    #          S = (z_a + z_b) / 2 = [0, −2, 2, 0] / √3 → normalised [0, −√2, √2, 0].
    # The total (a + b) / 2 = [.6, .1, .9, .6] normalises to ([.05, −.45, .35, .05]) / √.0825.
    # group 1: a = [NaN, 1] has one finite value, no spread: 0; b = [.2, .8] → z [−1, 1] → A [−1, 1].
    # group 2: no part has a spread: invalid.
    a = np.array([1, 0, 1, 1, np.nan, 1, 1, 1])
    b = np.array([.2, .2, .8, .2, .2, .8, .5, .5])
    g = np.array([0, 0, 0, 0, 1, 1, 2, 2])
    adv = each_part_advantages([(0.5, a), (0.5, b)], g, std_eps=0.0)
    np.testing.assert_allclose(adv.values, [0, -2 ** 0.5, 2 ** 0.5, 0, -1, 1, 0, 0], atol=1e-6)
    assert adv.valid.tolist() == [True] * 6 + [False] * 2
    total = group_advantages((a[:4] + b[:4]) / 2, g[:4], std_eps=0.0)
    np.testing.assert_allclose(total.values, np.array([.05, -.45, .35, .05]) / .0825 ** 0.5, atol=1e-6)
    assert not np.allclose(total.values, adv.values[:4], atol=1e-2)   # the two normalisations differ here


def test_a_part_of_zero_weight_and_equal_spreads():
    # with equal spreads in every part, each_part gives what the total gives
    a, b, g = np.array([1.0, 0, 0, 1]), np.array([0.0, 1, 0, 1]), np.zeros(4, int)
    np.testing.assert_allclose(each_part_advantages([(1, a), (1, b)], g, std_eps=0.0).values,
                               group_advantages(a + b, g, std_eps=0.0).values, atol=1e-6)
    # a weight of 0 takes a part out: only b decides
    np.testing.assert_allclose(each_part_advantages([(0, a), (1, b)], g, std_eps=0.0).values,
                               group_advantages(b, g, std_eps=0.0).values, atol=1e-6)


def test_the_learner_splits_a_reward_into_its_checks_by_weight():
    cfg = RewardsConfig(components=[{"name": "scene_check", "weight": 2.0}, {"name": "jpeg_compressibility", "weight": 0.0},
                                    {"name": "color_match", "weight": 0.5}])
    comps = {"scene_check": np.ones(2), "scene_check/count": np.zeros(2), "scene_check/shape": np.ones(2),
             "jpeg_compressibility": np.ones(2), "color_match": np.full(2, 0.3)}
    parts = Learner._reward_parts(SimpleNamespace(rewards_cfg=cfg), comps)
    assert [(w, r.tolist()) for w, r in parts] == [(1.0, [0, 0]), (1.0, [1, 1]), (0.5, [0.3, 0.3])]


def test_each_part_needs_group_statistics():
    with pytest.raises(ValueError, match="normalise=each_part needs advantage.mode=group"):
        AdvantageConfig(mode="tracker", normalise="each_part")

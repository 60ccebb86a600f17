"""The stopping rule (core/stopping.py) on scripted evaluation histories whose paired
differences are worked out by hand."""
import numpy as np
import pytest

from adascope_ray.core.stopping import stop_decision

BASE = np.array([[0.2, 0.5, 0.4, 0.7], [0.3, 0.6, 0.1, 0.5]])        # (S=2, N=4)
UP = np.array([[0.09, 0.11, 0.10, 0.10], [0.11, 0.09, 0.10, 0.10]])    # mean 0.1, SE 0.0038: better
FLAT = np.array([[0.01, -0.01, 0.01, -0.01], [-0.01, 0.01, -0.01, 0.01]])  # mean 0: no difference


def test_saturates_after_patience_evaluations_without_a_gain_beyond_noise():
    hist = [BASE, BASE + UP, BASE + UP + FLAT, BASE + UP - FLAT]
    d = stop_decision(hist[:2], patience=2)
    assert (d.stop, d.reference, d.stale, d.best) == (False, 1, 0, 1)
    d = stop_decision(hist[:3], patience=2)
    assert (d.stop, d.stale) == (False, 1)
    d = stop_decision(hist, patience=2)
    assert (d.stop, d.reason, d.reference, d.stale) == (True, "saturated", 1, 2)
    assert d.best == 1  # means: e1 = e2 = e3 (FLAT has mean 0); the first of equals stays best


def test_a_slow_rise_counts_against_the_last_improvement_not_the_previous_evaluation():
    # e_j = e_0 + 0.003 j ± w, the sign of w flipping with j; w = ±0.01 over the pairs has
    # SE 0.01 √(8/7) / √8 = 0.00378. Against e_0: e1 0.003 (0.79 SE), e2 0.006 (1.59 SE),
    # e3 0.009 (2.38 SE: better). Against the previous evaluation every step is
    # 0.003 ± 2w (0.40 SE): never better.
    w = np.array([[0.01, -0.01, 0.01, -0.01], [-0.01, 0.01, -0.01, 0.01]])
    hist = [BASE] + [BASE + 0.003 * j + (-1) ** j * w for j in (1, 2, 3)]
    assert stop_decision(hist[:2], patience=5).stale == 1
    assert stop_decision(hist[:3], patience=5).stale == 2
    d = stop_decision(hist, patience=3)
    assert (d.stop, d.reference, d.stale, d.best) == (False, 3, 0, 3)
    assert stop_decision(hist[:3], patience=2).stop  # without e3 it would have stopped


def test_guard_stops_when_the_reward_falls_beyond_noise_and_the_margin():
    hist = [BASE, BASE + UP, BASE + UP - 2 * UP]  # e2 = e1 − 0.2 on every pair (± 0.01): worse
    d = stop_decision(hist, patience=10, guard_margin=0.1)
    assert (d.stop, d.reason, d.best) == (True, "guard", 1)
    assert not stop_decision(hist, patience=10, guard_margin=0.3).stop  # a fall of 0.2 is inside a margin of 0.3
    assert not stop_decision(hist, patience=10).stop                    # no guard
    assert not stop_decision(hist[:2] + [BASE + UP] * 5, patience=None).stop  # stale 5, saturation off


def test_patience_below_one_is_refused():
    with pytest.raises(ValueError, match="patience"):
        stop_decision([BASE], patience=0)

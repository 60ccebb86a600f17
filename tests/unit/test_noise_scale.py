import math

import numpy as np
import pytest
import torch

from adascope_ray.core.noise_scale import noise_scale


def test_a_hand_worked_set_of_four_gradients():
    # mean (2, 0): ‖ḡ‖² = 4; deviations (−1,0), (1,0), (0,2), (0,−2): Σ‖·‖² = 10
    # tr Σ̂ = 10/3, ‖G‖²̂ = 4 − (10/3)/4 = 19/6, B_noise = (10/3)/(19/6) = 20/19
    ns = noise_scale(np.array([[1.0, 0], [3, 0], [2, 2], [2, -2]]))
    assert ns.n == 4
    assert ns.trace == pytest.approx(10 / 3)
    assert ns.signal == pytest.approx(19 / 6)
    assert ns.b_noise == pytest.approx(20 / 19)
    assert ns.split_half_cos == pytest.approx(1.0)   # both halves average to (2, 0)
    assert ns.expected_cosine(20) == pytest.approx(1 / math.sqrt(1 + 1 / 19))
    # the bound: tr Σ̂ / (‖G‖²̂ + 2 SE) lies below the estimate and equals it at z = 0
    assert ns.b_noise_lower(0.0) == pytest.approx(20 / 19)
    assert ns.b_noise_lower() == pytest.approx((10 / 3) / (19 / 6 + 2 * ns.signal_se))
    assert ns.b_noise_lower() < 20 / 19


def test_the_jackknife_matches_leaving_each_sample_out_by_hand():
    g = np.random.default_rng(0).normal(0.3, 1.0, size=(7, 5))
    ns = noise_scale(torch.from_numpy(g))           # torch input too

    def signal(x):
        m = x.mean(0)
        tr = ((x - m) ** 2).sum(1).sum() / (len(x) - 1)
        return m @ m - tr / len(x)

    loo = np.array([signal(np.delete(g, i, axis=0)) for i in range(len(g))])
    se = math.sqrt((len(g) - 1) / len(g) * ((loo - loo.mean()) ** 2).sum())
    assert ns.signal == pytest.approx(signal(g))
    assert ns.signal_se == pytest.approx(se)


def test_the_estimates_are_unbiased_over_many_draws():
    # g ~ N(μ, diag(s²)): ‖G‖² = ‖μ‖² = 0.25, tr Σ = Σ s² = 4.0 (closed forms)
    rng = np.random.default_rng(1)
    mu, s = np.array([0.5, 0, 0, 0]), np.array([1.0, 1.0, 1.0, 1.0])
    draws = [noise_scale(rng.normal(mu, s, size=(8, 4))) for _ in range(4000)]
    sig = np.array([d.signal for d in draws])
    tr = np.array([d.trace for d in draws])
    assert abs(sig.mean() - 0.25) < 4 * sig.std(ddof=1) / math.sqrt(len(sig))
    assert abs(tr.mean() - 4.0) < 4 * tr.std(ddof=1) / math.sqrt(len(tr))
    # with 8 samples and B_noise = 16 the signal is mostly unresolved; pure noise is never "resolved" often
    null = [noise_scale(rng.normal(0, 1, size=(8, 4))).resolved() for _ in range(500)]
    assert np.mean(null) < 0.15


def test_an_unresolved_signal_has_no_noise_scale_and_too_few_samples_are_refused():
    ns = noise_scale(np.array([[1.0, 0], [-1, 0], [0, 1], [0, -1]]))  # mean 0
    assert ns.signal < 0 and ns.b_noise == math.inf and not ns.resolved() and ns.expected_cosine(100) == 0.0
    assert ns.signal_se == pytest.approx(0.0) and ns.b_noise_lower() == math.inf  # symmetric: every leave-one-out equal
    # mean (0.1, 0.1): ‖ḡ‖² = 0.02, tr Σ̂ = (4.5 − 5 · 0.02) / 4 = 1.1, ‖G‖²̂ = 0.02 − 1.1 / 5 = −0.2
    ns = noise_scale(np.array([[1.0, 0], [-1, 0], [0, 1], [0, -1], [0.5, 0.5]]))
    assert ns.trace == pytest.approx(1.1) and ns.signal == pytest.approx(-0.2)
    assert ns.b_noise_lower() == pytest.approx(1.1 / (2 * ns.signal_se))  # the estimate below 0 counts as 0
    with pytest.raises(ValueError, match="at least 3"):
        noise_scale(np.ones((2, 3)))

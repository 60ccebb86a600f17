"""Paired differences and the verdict against hand-worked cases."""
import math

import numpy as np
import pytest

from adascope_ray.core.paired import clustered_difference, mean_se, paired_difference, verdict


def test_standard_error_of_a_paired_difference_by_hand():
    a = [0.5, 0.0, 1.0, 0.25]
    b = [0.75, 0.5, 1.0, 0.75]
    # d = (0.25, 0.5, 0, 0.5); mean 0.3125; deviations (-1/16, 3/16, -5/16, 3/16)
    # sum of squares = (1 + 9 + 25 + 9) / 256 = 44/256; s² = 44/768; SE = sqrt(44/768 / 4)
    d = paired_difference(a, b)
    assert d.n == 4 and d.mean == pytest.approx(0.3125)
    assert d.se == pytest.approx(math.sqrt(44 / 768 / 4))  # 0.11968...
    assert d.verdict() == "better"  # 0.3125 > 2 × 0.1197 = 0.2394


def test_pairing_removes_shared_variance():
    # B is A plus a small constant gain; A varies a lot across samples. Unpaired, the
    # gain is buried in A's spread; paired, every difference is exactly the gain.
    rng = np.random.default_rng(0)
    a = rng.uniform(0, 1, 100)
    b = a + 0.01
    d = paired_difference(a, b)
    assert d.mean == pytest.approx(0.01) and d.se < 1e-12 and d.verdict() == "better"
    unpaired_se = math.sqrt(a.var(ddof=1) / 100 + b.var(ddof=1) / 100)
    assert verdict(b.mean() - a.mean(), unpaired_se) == "no difference"


def test_verdict_thresholds_and_degenerate_cases():
    assert verdict(0.05, 0.02) == "better"          # 2.5 SE
    assert verdict(0.039, 0.02) == "no difference"  # 1.95 SE: under 2 is no difference
    assert verdict(-0.05, 0.02) == "worse"
    assert verdict(0.05, 0.02, z=3) == "no difference"
    assert verdict(0.1, math.nan) == "no difference"
    one = paired_difference([0.0], [1.0])
    assert one.n == 1 and math.isnan(one.se) and one.verdict() == "no difference"


def test_non_finite_pairs_are_left_out_and_shapes_must_match():
    d = paired_difference([0.0, np.nan, 1.0, 0.0], [1.0, 0.0, 1.0, np.inf])
    assert d.n == 2 and d.mean == pytest.approx(0.5)  # pairs 0 and 2: differences 1, 0
    assert d.se == pytest.approx(math.sqrt(0.5 / 2))
    with pytest.raises(ValueError, match="align"):
        paired_difference([0.0, 1.0], [1.0])
    assert mean_se([]) == (pytest.approx(math.nan, nan_ok=True), pytest.approx(math.nan, nan_ok=True))


def test_clustered_difference_by_hand():
    # captions 0, 1, 2 with differences (0.5, 0.5), (0, 0.5), (−0.25, −0.25):
    # caption means 0.5, 0.25, −0.25; mean 1/6; deviations (1/3, 1/12, −5/12)
    # sum of squares = (16 + 1 + 25) / 144 = 42/144; s² = 21/144; SE = sqrt(21/144 / 3)
    a = [0.0, 0.0, 0.5, 0.0, 0.5, 0.5]
    b = [0.5, 0.5, 0.5, 0.5, 0.25, 0.25]
    ids = [0, 0, 1, 1, 2, 2]
    d = clustered_difference(a, b, ids)
    assert d.n == 3 and d.mean == pytest.approx(1 / 6)
    assert d.se == pytest.approx(math.sqrt(21 / 144 / 3))
    # the same six pairs as independent: d = (.5, .5, 0, .5, −.25, −.25), a smaller SE
    assert paired_difference(a, b).se < d.se


def test_clustered_difference_when_captions_respond_differently():
    # every caption's gain is the same on all its pairs: the pairs' SE shrinks with their
    # number, the captions' does not (the difference is the captions' spread alone)
    rng = np.random.default_rng(1)
    gains = rng.normal(0.0, 0.05, 48)                     # (48,) one response per caption
    a = rng.uniform(0, 1, (9, 48))                         # 9 pairs per caption
    b = a + gains[None, :]
    ids = np.broadcast_to(np.arange(48), (9, 48))
    c = clustered_difference(a, b, ids)
    assert c.n == 48 and c.mean == pytest.approx(gains.mean())
    assert c.se == pytest.approx(gains.std(ddof=1) / math.sqrt(48))
    assert paired_difference(a, b).se == pytest.approx(c.se * math.sqrt(47 / (48 * 9 - 1)), rel=1e-9)


def test_clustered_difference_leaves_out_non_finite_pairs_and_empty_clusters():
    d = clustered_difference([0.0, np.nan, 1.0, np.nan], [1.0, 0.0, 1.0, 2.0], [0, 0, 1, 2])
    assert d.n == 2 and d.mean == pytest.approx(0.5)      # caption 2 has no finite pair
    with pytest.raises(ValueError, match="align"):
        clustered_difference([0.0, 1.0], [1.0, 1.0], [0])

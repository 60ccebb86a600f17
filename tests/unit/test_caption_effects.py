"""core/caption_effects.py against hand-worked mean squares and known variance components."""
import math

import numpy as np
import pytest

from adascope_ray.core.caption_effects import caption_effects


def test_hand_worked_two_seeds():
    # d[t, s, c]: seed 0 rows (noise 0, 1) = [1, 3], [3, 5]; seed 1 = [0, 4], [2, 6].
    # m_tc = [[2, 4], [1, 5]], m_c = [1.5, 4.5], m = 3.
    # SS_e: every residual is ±1, 8 of them, df T C (S−1) = 4      → MS_e = 2
    # SS_b: S Σ (m_tc − m_c)² = 2 · 4 · 0.25 = 2, df C (T−1) = 2   → MS_b = 1
    # SS_a: T S Σ (m_c − m)² = 4 · (2.25 + 2.25) = 18, df C−1 = 1  → MS_a = 18
    d = np.array([[[1, 3], [3, 5]], [[0, 4], [2, 6]]], dtype=float)
    r = caption_effects(d, permutations=0)
    assert r.shape == (2, 2, 2) and r.mean == 3.0
    assert (r.ms_residual, r.ms_seed_caption, r.ms_caption) == (2.0, 1.0, 18.0)
    assert r.var_residual == 2.0
    assert r.var_seed_caption == pytest.approx((1 - 2) / 2)     # −0.5: negative estimate kept as computed
    assert r.var_caption == pytest.approx((18 - 1) / 4)         # 4.25
    assert r.f_caption == 18.0 and r.f_seed_caption == 0.5


def test_hand_worked_one_seed():
    # one training seed, noise rows [0, 2, 4] and [2, 2, 6]: m_c = [1, 2, 5], m = 8/3.
    # SS_e = (1+1) + 0 + (1+1) = 4, df C (S−1) = 3 → MS_e = 4/3
    # SS_a = S Σ (m_c − m)² = 2 · (25/9 + 4/9 + 49/9) = 156/9, df 2 → MS_a = 78/9
    d = np.array([[[0, 2, 4], [2, 2, 6]]], dtype=float)
    r = caption_effects(d, permutations=0)
    assert r.ms_residual == pytest.approx(4 / 3) and r.ms_caption == pytest.approx(78 / 9)
    assert math.isnan(r.ms_seed_caption) and math.isnan(r.var_seed_caption) and math.isnan(r.f_seed_caption)
    assert r.var_caption == pytest.approx((78 / 9 - 4 / 3) / 2)
    assert r.f_caption == pytest.approx((78 / 9) / (4 / 3))


def test_components_recovered_from_a_known_model():
    # d = a_c + b_tc + e_tsc with σ_a = 0.3, σ_b = 0.2, σ_e = 0.5 over 4 000 captions: the
    # method-of-moments estimates converge to the variances that generated the data.
    rng = np.random.default_rng(1)
    T, S, C = 3, 3, 4000
    d = (0.3 * rng.standard_normal((1, 1, C)) + 0.2 * rng.standard_normal((T, 1, C))
         + 0.5 * rng.standard_normal((T, S, C)))
    r = caption_effects(d, permutations=0)
    assert r.var_residual == pytest.approx(0.25, rel=0.05)
    assert r.var_seed_caption == pytest.approx(0.04, abs=0.01)
    assert r.var_caption == pytest.approx(0.09, abs=0.01)


def test_permutation_p_values():
    rng = np.random.default_rng(2)
    T, S, C = 3, 3, 40
    noise = rng.standard_normal((T, S, C))
    strong = caption_effects(noise + 3.0 * rng.standard_normal((1, 1, C)), permutations=199, seed=0)
    assert strong.p_caption == pytest.approx(1 / 200)            # no shuffle reaches F_a
    assert strong.var_caption == pytest.approx(9.0, rel=0.5)
    per_seed = caption_effects(noise + 3.0 * rng.standard_normal((T, 1, C)), permutations=199, seed=0)
    assert per_seed.p_seed_caption == pytest.approx(1 / 200)     # each seed's own caption effects
    assert per_seed.p_caption > 0.05                             # shared by no two seeds
    null = [caption_effects(rng.standard_normal((T, S, C)), permutations=99, seed=k).p_caption for k in range(40)]
    assert 0.2 < np.mean(null) < 0.8                             # p is uniform under the null (mean 0.5)


def test_non_finite_captions_left_out_and_bad_shapes_refused():
    d = np.array([[[1, 3, np.nan], [3, 5, 1]], [[0, 4, 2], [2, 6, 2]]], dtype=float)
    r = caption_effects(d, permutations=0)
    assert r.shape == (2, 2, 2) and r.ms_caption == 18.0
    with pytest.raises(ValueError, match="training seeds, noise seeds, captions"):
        caption_effects(np.zeros((3, 4)))
    with pytest.raises(ValueError, match="≥ 2 noise seeds"):
        caption_effects(np.zeros((2, 1, 5)))

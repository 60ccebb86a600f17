"""Within-prompt diversity against hand-worked values."""
import math

import numpy as np
import pytest

from adascope_ray.core.diversity import mean_pairwise_distance, pixel_features


def test_rms_distance_is_the_mean_over_pairs_of_the_root_mean_square_difference():
    # prompt 0: three points in D = 2: (0,0), (2,0), (0,2); pair distances ‖·‖/√2:
    #   2/√2, 2/√2, √8/√2 = 2 → mean (√2 + √2 + 2) / 3
    # prompt 1: three copies of one image: 0
    f = np.array([[[0, 0], [2, 0], [0, 2]], [[1, 1], [1, 1], [1, 1]]], float)
    np.testing.assert_allclose(mean_pairwise_distance(f, "rms"), [(2 * math.sqrt(2) + 2) / 3, 0.0], atol=1e-12)


def test_cosine_distance_ignores_length_and_counts_opposites_as_two():
    # (1,0), (5,0), (0,3), (-1,0): pairs 1−cos = 0, 1, 2, 1, 2, 1 → mean 7/6
    f = np.array([[[1, 0], [5, 0], [0, 3], [-1, 0]]], float)
    np.testing.assert_allclose(mean_pairwise_distance(f, "cosine"), [7 / 6], atol=1e-12)


def test_one_image_per_prompt_has_no_diversity_and_an_unknown_metric_is_refused():
    assert np.isnan(mean_pairwise_distance(np.ones((2, 1, 3)), "rms")).all()
    with pytest.raises(ValueError, match="metric"):
        mean_pairwise_distance(np.ones((1, 2, 3)), "l1")


def test_pixel_features_are_area_averages_in_unit_range():
    img = np.zeros((1, 32, 32, 3), np.uint8)
    img[0, :2, :2, 0] = 255          # the top-left 2x2 block of the red channel: one 16x16 cell
    img[0, :, :, 2] = 51             # blue 0.2 everywhere
    f = pixel_features(img).reshape(16, 16, 3)
    assert f[0, 0, 0] == pytest.approx(1.0) and f[0, 1, 0] == 0.0 and f[1, 0, 0] == 0.0
    np.testing.assert_allclose(f[..., 2], 0.2)
    with pytest.raises(ValueError, match="smaller"):
        pixel_features(np.zeros((1, 8, 8, 3), np.uint8))

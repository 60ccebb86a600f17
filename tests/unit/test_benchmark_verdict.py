"""The window-strategies benchmark's verdict on the paper's headline under the paired
protocol (values worked by hand), and its chart of gains against cost."""
import sys
from pathlib import Path

from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
from window_strategies import verdict  # noqa: E402


def _diff(d, se):
    return {"b_minus_a": d, "se": se, "verdict": "better" if d > 2 * se else "worse" if d < -2 * se else "no difference"}


def test_the_headline_passes_only_better_by_two_se_at_half_the_cost():
    rose = {"mean": 0.03, "se": 0.01}
    # +0.014 ± 0.006: 2.33 SE, at 0.42 of the cost
    assert verdict(_diff(0.014, 0.006), 0.42, rose).endswith("PASS")
    # +0.011 ± 0.006 is 1.83 SE: no difference, however cheap
    assert verdict(_diff(0.011, 0.006), 0.42, rose).endswith("FAIL")
    # better, but at 0.6 of full's cost
    assert verdict(_diff(0.014, 0.006), 0.60, rose).endswith("FAIL")
    # the exact boundary: 2 SE is not more than 2 SE
    assert verdict(_diff(0.012, 0.006), 0.5, rose).endswith("FAIL")


def test_the_verdict_says_when_full_itself_does_not_rise():
    # full −0.008 ± 0.004 (2 SE down, not up): the win is over a model that did not improve
    said = verdict(_diff(0.014, 0.006), 0.42, {"mean": -0.008, "se": 0.004})
    assert "PASS" in said and said.endswith("full itself does not rise above the base (-0.0080 ± 0.0040)")
    assert "does not rise" not in verdict(_diff(0.014, 0.006), 0.42, {"mean": 0.03, "se": 0.01})


def test_the_gain_chart_draws_every_setting(tmp_path):
    from adascope_ray.charts import Point, points_chart

    points_chart(tmp_path / "g.png", [Point("full", 1.0, -0.008, 0.008, [-0.011, -0.007, -0.007]),
                                      Point("adascope", 0.42, 0.006, 0.012, [0.012, 0.005, 0.001])])
    with Image.open(tmp_path / "g.png") as im:
        assert im.size == (720, 400)


def test_compare_runs_pairs_through_a_few_base_flips_and_refuses_more():
    import numpy as np
    import pytest
    from compare_runs import base_mismatch

    base = np.full((3, 48), 0.8)
    flipped = base.copy()
    flipped[0, :2] = 0.6                      # 2 of 144: a re-evaluation's edge pixels
    assert base_mismatch(base, flipped, 0) == 2
    flipped[1, :2] = 0.6                      # 4 of 144 = 2.8 %: not the same samples
    with pytest.raises(SystemExit, match="4 of 144"):
        base_mismatch(base, flipped, 0)
    with pytest.raises(SystemExit, match="do not pair"):
        base_mismatch(base, base[:, :40], 0)


def test_pool_runs_pairs_every_sample_of_every_file_hand_worked(tmp_path):
    import json

    import pytest
    from pool_runs import pooled

    def result(path, seed, base, final, count_base, count_final):
        ev = {"base_total": base, "final_total": final,
              "base_components": {"scene_check/count": count_base}, "final_components": {"scene_check/count": count_final}}
        path.write_text(json.dumps({"eval_prompts": 2, "eval_seeds": [0], "iterations": 9,
                                    "runs": [{"seed": seed, "cost": {}, "test": ev}]}))
        return str(path)

    a = result(tmp_path / "a.json", 0, [0.5, 0.5], [0.6, 0.7], [0, 1], [1, 1])
    b = result(tmp_path / "b.json", 1, [0.5, 0.5], [0.5, 0.8], [1, 0], [1, 0])
    out = pooled(f"{a},{b}", "test")
    # differences 0.1, 0.2, 0.0, 0.3: mean 0.15, sample std sqrt(0.05 / 3), SE that / 2
    assert out["total"].mean == pytest.approx(0.15) and out["total"].n == 4
    assert out["total"].se == pytest.approx((0.05 / 3) ** 0.5 / 2)
    assert out["seeds"][0].mean == pytest.approx(0.15) and out["seeds"][1].mean == pytest.approx(0.15)
    assert out["checks"]["scene_check/count"].mean == pytest.approx(0.25)  # differences 1, 0, 0, 0
    # each caption one unit: caption 0's differences 0.1 and 0.0 (mean 0.05), caption 1's
    # 0.2 and 0.3 (0.25); their std sqrt(0.02), SE that / sqrt(2) = 0.1
    assert out["by_caption"].mean == pytest.approx(0.15) and out["by_caption"].n == 2
    assert out["by_caption"].se == pytest.approx(0.1)
    with pytest.raises(SystemExit, match="seed 0 appears twice"):
        pooled(f"{a},{a}", "test")


def test_headroom_best_of_k_against_enumerating_every_subset():
    """E[max of k of N draws without replacement] by the order statistic's weights equals
    the mean over all C(N, k) subsets of their maximum (an independent count), and its
    ends are the mean (k = 1) and the maximum (k = N); the variance split adds up."""
    from itertools import combinations

    import numpy as np
    import pytest

    from headroom import expected_best_of, variance_shares

    r = np.array([[0.2, 1.0, 0.0], [0.8, 1.0, 0.0], [0.5, 0.6, 1.0], [0.2, 0.6, 0.0], [1.0, 0.0, 0.0]])  # (N=5, C=3)
    for k in range(1, 6):
        brute = [np.mean([max(r[list(s), c]) for s in combinations(range(5), k)]) for c in range(3)]
        assert expected_best_of(r, k) == pytest.approx(brute, abs=1e-12)
    # caption 2 passes once in five: best of 2 is 1 with probability 1 - C(4,2)/C(5,2) = 0.4
    assert expected_best_of(r, 2)[2] == pytest.approx(0.4)
    assert expected_best_of(r, 1) == pytest.approx(r.mean(axis=0))
    assert expected_best_of(r, 5) == pytest.approx(r.max(axis=0))
    with pytest.raises(ValueError, match="k must be in 1..5"):
        expected_best_of(r, 6)
    v = variance_shares(r)
    assert v["within"] + v["between"] == pytest.approx(r.var())  # the law of total variance
    assert variance_shares(np.ones((4, 2)) * [0.0, 1.0])["within_share"] == 0.0  # differences only between captions


def test_headroom_share_of_variance_and_its_jackknife_se_hand_worked():
    """ratio of means 2.5 / 2 = 1.25; leaving each caption out gives 9/6, 8/6, 7/6, 6/6,
    whose squared deviations from 1.25 sum to 0.13889, times 3/4 → SE 0.3227 (with a
    constant denominator, the plain SE of the numerator's mean over it: 1.291 / 2 / 2)."""
    import numpy as np
    import pytest

    from headroom import ratio_of_means

    share, se = ratio_of_means(np.array([1.0, 2.0, 3.0, 4.0]), np.full(4, 2.0))
    assert share == pytest.approx(1.25) and se == pytest.approx(0.32275, abs=1e-5)
    assert se == pytest.approx(np.std([1.0, 2.0, 3.0, 4.0], ddof=1) / 2 / 2)
    assert np.isnan(ratio_of_means(np.ones(3), np.zeros(3))[0])


def test_caption_effects_reads_result_files_and_refuses_shared_base_samples(tmp_path):
    import json

    import pytest
    from caption_effects import differences

    def result(path, seed, noise, base, final):
        ev = {"base_total": base, "final_total": final,
              "base_components": {"scene_check/count": base}, "final_components": {"scene_check/count": final}}
        path.write_text(json.dumps({"eval_prompts": 2, "eval_seeds": [0, 1], "iterations": 9, "noise_stride": 10,
                                    "runs": [{"seed": seed, "eval_seeds": noise, "cost": {}, "test": ev}]}))
        return str(path)

    # the hand-worked d of tests/unit/test_caption_effects.py, as trained − base of two seeds
    a = result(tmp_path / "a.json", 0, [0, 1], [[0, 0], [0, 0]], [[1, 3], [3, 5]])
    b = result(tmp_path / "b.json", 1, [10, 11], [[1, 1], [1, 1]], [[1, 5], [3, 7]])
    ds = differences(f"{a},{b}", "test")
    assert ds["total"].tolist() == [[[1, 3], [3, 5]], [[0, 4], [2, 6]]]
    assert ds["scene_check/count"].tolist() == ds["total"].tolist()
    shared = result(tmp_path / "c.json", 1, [1, 2], [[1, 1], [1, 1]], [[1, 5], [3, 7]])
    with pytest.raises(SystemExit, match="seeds 0 and 1 were both scored with noise seed 1"):
        differences(f"{a},{shared}", "test")

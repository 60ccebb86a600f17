"""evaluation.py's reading with each prompt as one unit, against hand-worked values."""
import numpy as np
import pytest

from adascope_ray.evaluation import Evaluation, describe_gain


def test_a_prompt_listed_twice_is_one_unit_hand_worked():
    # prompts as samples_per_prompt = 2 lists them: a, a, b, b; two noise seeds (rows)
    prompts = ["a", "a", "b", "b"]
    base = Evaluation(0, prompts, [0, 1], np.array([[0.0, 0.0, 1.0, 1.0], [0.0, 0.0, 1.0, 1.0]]))
    new = Evaluation(3, prompts, [0, 1], np.array([[1.0, 0.0, 1.0, 1.0], [1.0, 1.0, 0.0, 1.0]]))
    # d: a → 1, 0, 1, 1 (mean 0.75); b → 0, 0, −1, 0 (mean −0.25). Units 0.75, −0.25:
    # mean 0.25, std √0.5, SE √0.5 / √2 = 0.5. The 8 samples as pairs: mean 0.25,
    # s² = Σ(d − .25)² / 7 = (3·.5625 + 4·.0625 + 1.5625) / 7 = 3.5 / 7 = 0.5, SE √0.5 / √8 = 0.25
    d = new.by_prompt_against(base)
    assert (d.mean, d.se, d.n) == (pytest.approx(0.25), pytest.approx(0.5), 2)
    g = new.against(base)["reward"]
    assert (g.mean, g.se, g.n) == (pytest.approx(0.25), pytest.approx(0.25), 8)
    assert describe_gain(base, new) == ("paired gain +0.2500 ± 0.2500 (no difference; 8 samples, 2 noise seeds); "
                                        "each prompt one unit ± 0.5000 (no difference; 2 prompts)")


def test_different_prompts_or_seeds_do_not_pair():
    a = Evaluation(0, ["a", "b"], [0], np.zeros((1, 2)))
    with pytest.raises(ValueError, match="same prompts and noise seeds"):
        Evaluation(1, ["a", "c"], [0], np.ones((1, 2))).by_prompt_against(a)

"""The window-strategies benchmark's scoring: cost to reach a target reward on a piecewise
linear curve, and the verdict against the paper's headline (values worked by hand)."""
import math
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
from window_strategies import cost_to_reach, verdict  # noqa: E402


def test_cost_to_reach_interpolates_between_evaluations():
    costs = np.array([0.0, 100.0, 200.0])
    rewards = np.array([0.50, 0.54, 0.62])
    # 0.58 lies halfway between 0.54 (cost 100) and 0.62 (cost 200): cost 150
    assert math.isclose(cost_to_reach(costs, rewards, 0.58), 150.0)
    # already at the target at the first evaluation: that evaluation's cost
    assert cost_to_reach(costs, rewards, 0.45) == 0.0
    assert cost_to_reach(costs, rewards, 0.70) == math.inf


def _row(strategy, start, final, reach):
    return {"strategy": strategy, "start": start, "final_mean": final, "reach_vs_full_cost": reach}


def test_verdict_pass_fail_and_no_verdict():
    full = _row("full", 0.50, 0.60, 1.0)
    assert verdict([full, _row("adascope", 0.50, 0.62, 0.40)]).endswith("PASS")
    # cheaper but ends lower than full
    assert verdict([full, _row("adascope", 0.50, 0.58, 0.40)]).endswith("FAIL")
    # ends higher but needs 0.6 of full's cost to get there
    assert verdict([full, _row("adascope", 0.50, 0.65, 0.60)]).endswith("FAIL")
    # full got worse: reaching its final reward is free, so no verdict either way
    fell = _row("full", 0.50, 0.48, 1.0)
    assert verdict([fell, _row("adascope", 0.50, 0.55, 0.0)]).startswith("NO VERDICT")
    assert verdict([full]).startswith("NO VERDICT")

"""TensorBoard logging read back with TensorBoard's own event reader."""
import math

import pytest

from adascope_ray.tensorboard_log import TensorBoardLog


def _scalars(root):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(root / "tensorboard"))
    acc.Reload()
    return {tag: [(e.step, e.value) for e in acc.Scalars(tag)] for tag in acc.Tags()["scalars"]}


def test_every_numeric_field_is_a_scalar_at_its_update_and_a_resume_replaces_the_redone_steps(tmp_path):
    log = TensorBoardLog(tmp_path)
    for it, r in enumerate([0.5, 0.25, 0.75, 1.0]):
        log.record({"iteration": it, "reward_mean": r, "window_hist": [1, 2], "eval/verdict": "better",
                    "dropped_stale": False, "loss": math.nan, **({"eval/reward": 0.9} if it == 3 else {})})
    log.close()
    # resumed from iteration 2's checkpoint: iterations 2 and 3 are redone with other results
    log = TensorBoardLog(tmp_path, start=2)
    for it, r in ((2, 0.125), (3, 0.375)):
        log.record({"iteration": it, "reward_mean": r})
    log.close()
    got = _scalars(tmp_path)
    # lists, strings, booleans and NaN are not scalars; the step is updates done (iteration + 1)
    assert set(got) == {"reward_mean", "eval/reward"}
    assert got["reward_mean"] == [(1, 0.5), (2, 0.25), (3, pytest.approx(0.125)), (4, pytest.approx(0.375))]
    assert got["eval/reward"] == []  # logged at step 4 by the first attempt, which the resume redid

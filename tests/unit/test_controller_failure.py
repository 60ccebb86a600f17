"""The controller's way out of a failed run says what it could not save (no cluster:
only the failure path is exercised)."""
from adascope_ray.cluster.controller import Controller


def test_a_failed_checkpoint_on_the_way_out_is_reported(capsys):
    ctl = Controller.__new__(Controller)
    ctl.consistent_at, ctl.saved_at, ctl.start, ctl.learners = 3, 2, 0, object()

    def checkpoint(step, final=False):
        raise OSError(28, "No space left on device")

    ctl.checkpoint = checkpoint
    ctl.save_on_failure()
    out = capsys.readouterr().out
    assert "could not save a checkpoint at iteration 3" in out and "No space left on device" in out
    assert "--resume continues from iteration 2" in out


def test_a_resumed_run_samples_the_window_its_learner_published(tmp_path):
    # window.placement = sampler: the next rollouts' window is part of the learner's state,
    # so the first iteration after --resume samples it (not every step)
    from adascope_ray.config import load_config
    from adascope_ray.runio import RunDir
    from adascope_ray.types import LearnerState

    from pathlib import Path

    cfg = load_config(Path(__file__).parents[2] / "configs" / "tiny.yaml", ["window.placement=sampler", "sampling.initial_noise=per_group"])
    run = RunDir(tmp_path / "r")
    placed = Controller(cfg, run, ["a red circle"], progress=False, resume=(3, LearnerState(3, {}, {"next_window": [2, 6]})))
    assert placed.window == (2, 6)
    assert Controller(cfg, run, ["a red circle"], progress=False, resume=(0, None)).window is None
    assert Controller(cfg, run, ["a red circle"], progress=False).window is None

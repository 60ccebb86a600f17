"""The controller's way out of a failed run says what it could not save (no cluster:
only the failure path is exercised)."""
from adascope_ray.cluster.controller import Controller


def test_a_failed_checkpoint_on_the_way_out_is_reported(capsys):
    ctl = Controller.__new__(Controller)
    ctl.consistent_at, ctl.saved_at, ctl.start, ctl.learner = 3, 2, 0, object()

    def checkpoint(step, final=False):
        raise OSError(28, "No space left on device")

    ctl.checkpoint = checkpoint
    ctl.save_on_failure()
    out = capsys.readouterr().out
    assert "could not save a checkpoint at iteration 3" in out and "No space left on device" in out
    assert "--resume continues from iteration 2" in out

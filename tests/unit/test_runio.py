"""The run folder never deletes what is not a run of ours, and a checkpoint written
again for the same step never leaves the step without a copy."""
import json
import os

import numpy as np
import pytest

from adascope_ray.learner.learner import Checkpoint
from adascope_ray.runio import RunDir, RunDirError


def _files(root):
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


@pytest.mark.parametrize("name", ["..", ".", "", "a/b", "../x"])
def test_a_name_that_is_not_one_folder_is_refused(tmp_path, name):
    (tmp_path / "runs").mkdir()
    (tmp_path / "src.py").write_text("x")
    with pytest.raises(RunDirError, match="run.name"):
        RunDir.create(str(tmp_path / "runs"), name, overwrite=True)
    assert _files(tmp_path) == ["src.py"]


def test_overwrite_replaces_a_run_folder_only(tmp_path):
    out = tmp_path / "runs"
    run = RunDir.create(str(out), "r", overwrite=False)
    run.write_config("run: {}\n")
    run.append_metrics({"iteration": 0})
    assert RunDir.create(str(out), "r", overwrite=True).root == out / "r"
    assert _files(out) == []  # the old run is gone, the new folder is empty

    stranger = out / "notes"
    stranger.mkdir()
    (stranger / "thesis.tex").write_text("years of work")
    with pytest.raises(RunDirError, match="does not look like a run folder"):
        RunDir.create(str(out), "notes", overwrite=True)
    assert (stranger / "thesis.tex").read_text() == "years of work"


def test_overwrite_never_follows_a_link_out_of_output_dir(tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "config.yaml").write_text("looks like a run")
    (tmp_path / "runs").mkdir()
    os.symlink(elsewhere, tmp_path / "runs" / "r")
    with pytest.raises(RunDirError, match="not a folder inside"):
        RunDir.create(str(tmp_path / "runs"), "r", overwrite=True)
    assert (elsewhere / "config.yaml").is_file()


def _ckpt(value: float) -> Checkpoint:
    return Checkpoint("full", 1, {"w": np.full(3, value, np.float32)}, {"_class_name": "X"}, "unet")


def _weight(path) -> float:
    from safetensors.numpy import load_file

    return float(load_file(path / "unet" / "diffusion_pytorch_model.safetensors")["w"][0])


def test_rewriting_a_step_keeps_the_old_copy_until_the_new_one_is_in_place(tmp_path, monkeypatch):
    run = RunDir.create(str(tmp_path), "r", overwrite=False)
    first = run.save_checkpoint(2, _ckpt(1.0), {"iteration": 2})
    assert _weight(run.save_checkpoint(2, _ckpt(2.0), {"iteration": 2})) == 2.0  # replaced
    assert [p.name for p in (tmp_path / "r" / "checkpoints").iterdir()] == ["step_0002"]

    real_rename = os.rename

    def crash_on_the_new_copy(src, dst):  # the process dies as the new copy moves in
        if ".tmp-" in str(src):
            raise OSError("power cut")
        real_rename(src, dst)

    monkeypatch.setattr("adascope_ray.runio.os.rename", crash_on_the_new_copy)
    with pytest.raises(OSError, match="power cut"):
        run.save_checkpoint(2, _ckpt(3.0), {"iteration": 2})
    monkeypatch.setattr("adascope_ray.runio.os.rename", real_rename)
    # the previous copy is still there, and a reader of the run folder finds it in place
    assert run.checkpoints() == [first] and _weight(first) == 2.0
    assert json.loads((first / "trainer_state.json").read_text())["iteration"] == 2

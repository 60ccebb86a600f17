"""The shapes world's model: the training script writes a folder the loader reads as
any diffusers pipeline."""
import json

import pytest


def test_training_script_writes_a_loadable_pipeline(tmp_path, make_cfg):
    from diffusers import StableDiffusionPipeline

    from adascope_ray.models.loader import load_pipeline
    from adascope_ray.world.train import main

    assert main(["--out", str(tmp_path / "m"), "--images", "64", "--vae-steps", "2", "--unet-steps", "2"]) == 0
    info = json.loads((tmp_path / "m" / "training.json").read_text())
    assert info["unet_steps"] == 2 and info["scaling_factor"] > 0
    pipe = load_pipeline(make_cfg(model={"path": str(tmp_path / "m")}).model)
    assert isinstance(pipe, StableDiffusionPipeline) and pipe.vae.config.scaling_factor == pytest.approx(info["scaling_factor"])
    assert next(pipe.unet.parameters()).dtype.is_floating_point and str(next(pipe.unet.parameters()).dtype) == "torch.float32"

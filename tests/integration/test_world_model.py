"""The shapes world's model: the training script writes a folder the loader reads as
any diffusers pipeline, and the shipped model draws the world better than chance."""
import json

import numpy as np
import pytest
import torch


def test_training_script_writes_a_loadable_pipeline(tmp_path, make_cfg):
    from diffusers import StableDiffusionPipeline

    from adascope_ray.models.loader import load_pipeline
    from adascope_ray.world.train import main

    assert main(["--out", str(tmp_path / "m"), "--images", "64", "--vae-steps", "2", "--unet-steps", "2"]) == 0
    info = json.loads((tmp_path / "m" / "training.json").read_text())
    assert info["unet_steps"] == 2 and info["scaling_factor"] > 0
    pipe = load_pipeline(make_cfg(model={"path": str(tmp_path / "m")}).model)
    assert isinstance(pipe, StableDiffusionPipeline) and pipe.vae.config.scaling_factor == pytest.approx(info["scaling_factor"])
    assert next(pipe.unet.parameters()).dtype == torch.float32  # saved in float16, loaded at the dtype asked for
    sc = pipe.scheduler.config  # zero terminal SNR: the first step reads the caption, not x_T
    assert (sc.prediction_type, sc.rescale_betas_zero_snr, sc.timestep_spacing) == ("v_prediction", True, "trailing")


def test_an_epsilon_model_on_a_zero_snr_schedule_is_refused_by_name(tmp_path, make_cfg):
    from diffusers import DDIMScheduler

    from adascope_ray.models.loader import load_pipeline
    from adascope_ray.models.policy import DiffusionPolicy
    from adascope_ray.world.train import world_scheduler

    cfg = make_cfg()
    unet = load_pipeline(cfg.model).unet
    eps_zero_snr = DDIMScheduler.from_config(world_scheduler().config, prediction_type="epsilon")
    with pytest.raises(ValueError, match="scheduler.*v_prediction"):
        DiffusionPolicy(unet, eps_zero_snr, cfg.sampling)
    assert DiffusionPolicy(unet, world_scheduler(), cfg.sampling).schedule.alpha_bars[0] == 0


def test_shipped_model_draws_the_world_better_than_an_untrained_one(model_cache):
    """Held-out prompts, the project's own sampler, scene_check: the trained model
    against the random-init model of the same architecture (the builtin tiny one)."""
    from adascope_ray.world.evaluate import evaluate, heldout_prompts

    prompts = heldout_prompts(16)
    trained = evaluate("builtin:shapes", prompts)
    untrained = evaluate("builtin:tiny", prompts, cache_dir=str(model_cache))
    assert trained["check/color"] > untrained["check/color"] + 0.3
    assert trained["reward_mean"] > untrained["reward_mean"] + 0.2
    assert np.isfinite(trained["reward_mean"])

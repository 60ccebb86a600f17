import pytest

from adascope_ray.config import config_from_dict


def tiny_tree(cache_dir, **sections):
    tree = {
        "data": {"prompts": ["a red circle", "a blue square"], "prompts_per_iteration": 2, "group_size": 2},
        "model": {"cache_dir": str(cache_dir)},
        "sampling": {"num_steps": 4, "guidance_scale": 3.0},
        "sampler": {"batch_size": 4, "torch_threads": 2},
        "learner": {"micro_batch_size": 3, "lr": 1e-2, "clip_range": 0.5},
    }
    for k, v in sections.items():
        tree[k] = {**tree.get(k, {}), **v}
    return tree


@pytest.fixture(scope="session")
def model_cache(tmp_path_factory):
    return tmp_path_factory.mktemp("models")


@pytest.fixture(scope="session")
def tiny_cfg(model_cache):
    return config_from_dict(tiny_tree(model_cache))


@pytest.fixture(scope="session")
def make_cfg(model_cache):
    return lambda **sections: config_from_dict(tiny_tree(model_cache, **sections))


def pair_and_rollout(cfg, reward: str = "jpeg_compressibility"):
    """A fresh learner and sampler (the sampler holding the learner's v0 weights) and
    one scored rollout of iteration 0's prompts."""
    from adascope_ray.data import PromptSchedule
    from adascope_ray.learner import Learner
    from adascope_ray.rewards import build_scorer
    from adascope_ray.rollout import Sampler
    from adascope_ray.types import RewardResult, ScoredRollout

    learner = Learner(cfg.model, cfg.sampling, cfg.learner, cfg.window, cfg.advantage)
    sampler = Sampler(cfg.model, cfg.sampling, cfg.sampler)
    sampler.set_weights(learner.publish())
    batch = PromptSchedule(cfg.data.prompts, cfg.data.prompts_per_iteration, cfg.data.group_size, 0).batches(0, 1, sampler.version)[0]
    rollout = sampler.sample(batch)
    r = build_scorer(reward)(rollout.images, rollout.prompts)
    return learner, sampler, ScoredRollout(rollout, RewardResult(r, {reward: r}))


def recomputed_and_stored_log_probs(learner, scored):
    """(learner's recomputed log-probs, the sampler's stored ones) for every (sample,
    step) pair, the pairs reversed and split into 3 micro-batches: another order and
    grouping than sampling used. Equal before the first update (ratio 1)."""
    import numpy as np
    import torch

    from adascope_ray.learner import collate

    batch = collate([scored], learner.device, learner.policy.schedule)
    pairs = np.argwhere(np.ones(batch.log_probs.shape, bool))[::-1].copy()
    learner.unet.eval()
    with torch.no_grad():
        got = torch.cat([learner.log_probs(batch, mb) for mb in np.array_split(pairs, 3)])
    return got, batch.log_probs[torch.from_numpy(pairs[:, 0]), torch.from_numpy(pairs[:, 1])]


def plain_pipeline_with_exported_lora(cfg, learner, tmp_path, run, **absent):
    """Save the learner's checkpoint, load the base folder with a plain
    DiffusionPipeline and our LoRA file with diffusers' own load_lora_weights, and
    return run(denoiser) for (the plain base, the base + our LoRA, the learner)."""
    import torch
    from diffusers import DiffusionPipeline

    from adascope_ray.models.loader import resolve_model_path
    from adascope_ray.models.policy import denoiser_name
    from adascope_ray.runio import RunDir

    path = RunDir.create(str(tmp_path), "r", overwrite=False).save_checkpoint(1, learner.export(), {"iteration": 1})
    pipe = DiffusionPipeline.from_pretrained(str(resolve_model_path(cfg.model)), **absent)
    with torch.no_grad():
        plain = run(getattr(pipe, denoiser_name(pipe)))
        pipe.load_lora_weights(str(path))
        loaded = run(getattr(pipe, denoiser_name(pipe)))
        learner.unet.eval()
        return plain, loaded, run(learner.unet)

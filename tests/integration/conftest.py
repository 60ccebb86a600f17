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

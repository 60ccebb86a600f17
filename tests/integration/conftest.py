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

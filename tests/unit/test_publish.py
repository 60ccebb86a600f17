"""Weight publication layout, scaling and placement options (no Ray cluster)."""
import numpy as np
import pytest

from adascope_ray.cluster.publish import pack, resolve_backend, unpack
from adascope_ray.cluster.serve_app import scaling_options
from adascope_ray.config import ConfigError, RewardComponentConfig, config_from_dict


def test_pack_orders_by_name_and_unpack_inverts():
    state = {"b": np.array([[1.0, 2.0]]), "a": np.array([3.0]), "c": np.zeros((0,))}
    flat = pack(state)
    # sorted names: a (1 value), b (2 values), c (none) -> [3, 1, 2]
    assert flat.dtype == np.float32 and flat.tolist() == [3.0, 1.0, 2.0]
    back = unpack(flat, {"a": (1,), "b": (1, 2), "c": (0,)})
    assert back["b"].shape == (1, 2) and back["b"].tolist() == [[1.0, 2.0]] and back["a"].tolist() == [3.0]
    with pytest.raises(ValueError, match="holds 3 values, the layout needs 4"):
        unpack(flat, {"a": (2,), "b": (1, 2)})


def _cfg(**sections):
    return config_from_dict({"data": {"prompts": ["x"], "prompts_per_iteration": 2}, **sections})


def test_collective_backend_choice():
    assert resolve_backend(_cfg(publish={"method": "collective"})) == "gloo"  # CPU actors
    gpu = {"sampler": {"num_gpus": 1}, "learner": {"num_gpus": 1}}
    assert resolve_backend(_cfg(publish={"method": "collective"}, **gpu)) == "nccl"
    assert resolve_backend(_cfg(publish={"method": "collective", "backend": "gloo"}, **gpu)) == "gloo"
    with pytest.raises(ConfigError, match="nccl needs learner.num_gpus"):
        _cfg(publish={"method": "collective", "backend": "nccl"})


def test_placement_needs_non_empty_bundles():
    assert _cfg(cluster={"placement": "SPREAD"}).cluster.placement == "SPREAD"
    with pytest.raises(ConfigError, match="sampler.num_cpus or sampler.num_gpus"):
        _cfg(cluster={"placement": "PACK"}, sampler={"num_cpus": 0})
    with pytest.raises(ConfigError, match="cluster.placement"):
        _cfg(cluster={"placement": "pack"})  # Ray's strategy names are upper case


def test_reward_scaling_options():
    fixed = RewardComponentConfig(name="jpeg_compressibility", num_replicas=3)
    assert scaling_options(fixed) == {"num_replicas": 3}
    assert scaling_options(RewardComponentConfig(name="jpeg_compressibility")) == {"num_replicas": 1}
    auto = RewardComponentConfig.model_validate(
        {"name": "color_match", "autoscaling": {"min_replicas": 1, "max_replicas": 5, "target_ongoing_requests": 4}})
    opts = scaling_options(auto)["autoscaling_config"]
    assert (opts["min_replicas"], opts["max_replicas"], opts["target_ongoing_requests"]) == (1, 5, 4.0)


@pytest.mark.parametrize("component, message", [
    ({"num_replicas": 2, "autoscaling": {}}, "not both"),
    ({"autoscaling": {"min_replicas": 3, "max_replicas": 2}}, "max_replicas \\(2\\) is below min_replicas \\(3\\)"),
    ({"autoscaling": {"min_replicas": 1, "max_replicas": 2, "initial_replicas": 4}}, "initial_replicas"),
    ({"autoscaling": {"target_ongoing_requests": 0}}, "target_ongoing_requests"),
])
def test_reward_scaling_errors_name_the_field(component, message):
    with pytest.raises(ConfigError, match=message) as err:
        _cfg(rewards={"components": [{"name": "jpeg_compressibility", **component}]})
    assert "rewards.components.0" in str(err.value)

"""SQDF and LaSRO through the real service: samplers, Serve's scene_check, the learner
actor, weight publication and checkpoints on a local Ray cluster."""
import json
from pathlib import Path

import numpy as np
import pytest

from adascope_ray.cli import main

from .kept import kept_rewards

pytestmark = pytest.mark.e2e
CONFIGS = Path(__file__).parents[2] / "configs"


def _rows(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.mark.parametrize("name,expect,pairs", [
    # SQDF with scene_check's smooth form: it trains from the first update, 2 steps x 8 (trajectory, k) terms
    ("tiny_sqdf", {"sqdf/kl", "sqdf/reward_hat", "critic/serve_corr", "replay/age_mean"}, 16),
    # LaSRO: the surrogate fits in both updates; after its warm-up update the policy follows it,
    # and from the second on it is measured on samples it has not trained on
    # (2 steps x 8 chains, each through both sampling steps)
    ("tiny_lasro", {"surrogate/loss", "surrogate/held_out_accuracy", "lasro/kl", "lasro/reward_hat"}, 32),
])
def test_two_iterations_of_each_algorithm_through_the_service(ray_cluster, tmp_path, name, expect, pairs):
    rc = main(["train", str(CONFIGS / f"{name}.yaml"), "--no-progress", "run.iterations=2", f"run.output_dir={tmp_path}",
               "data.prompts_per_iteration=2", "data.group_size=4", "learner.sqdf.optimizer_steps=2",
               "learner.sqdf.batch_size=8", "learner.lasro.optimizer_steps=2", "learner.lasro.batch_size=8",
               *(["sampling.num_steps=4"] if name == "tiny_sqdf" else []),
               "eval.every=0", f"model.cache_dir={tmp_path / 'models'}",
               f"rewards.http_port={ray_cluster['http_port']}", *kept_rewards("scene")])  # tiny.yaml's reward
    assert rc == 0
    run = tmp_path / name
    rows = _rows(run / "metrics.jsonl")
    assert [r["weights_version"] for r in rows] == [1, 2]
    # every sample of each iteration enters the buffer: 8, then 16
    assert [r["replay/size"] for r in rows if "replay/size" in r][-1] == 16
    assert expect <= set(rows[-1]), sorted(set(rows[-1]))
    assert all(np.isfinite(rows[-1][k]) for k in expect)
    assert rows[-1]["trained_pairs"] == pairs and rows[-1]["learner_forward_rows"] > 0
    assert (run / "checkpoints" / "step_0002" / "pytorch_lora_weights.safetensors").is_file()

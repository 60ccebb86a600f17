"""`adascope-ray eval`'s summary and table against hand-worked values, and its config's refusals."""
import json

import numpy as np
import pytest

from adascope_ray.checkpoints import CheckpointRef
from adascope_ray.config import ConfigError, ModelConfig
from adascope_ray.eval_cli import summarise, table
from adascope_ray.eval_config import load_eval_config
from adascope_ray.evaluation import Evaluation


def _cfg(tmp_path, **over):
    tree = {"checkpoints": ["base", "run"], "model": {"path": "builtin:shapes"}, "prompts": {"prompts": ["a", "b"]},
            "seeds": [0, 1], "rewards": [{"name": "scene_check"}, {"name": "jpeg_compressibility", "weight": 0.0}], **over}
    path = tmp_path / "eval.yaml"
    path.write_text(json.dumps(tree))  # JSON is YAML
    return path


def test_summary_and_table_hold_the_paired_differences_worked_by_hand(tmp_path):
    cfg = load_eval_config(_cfg(tmp_path))
    ckpt = tmp_path / "run" / "checkpoints" / "step_0002"
    ckpt.mkdir(parents=True)
    (ckpt / "trainer_state.json").write_text('{"kind": "lora"}')
    model = ModelConfig(path="builtin:shapes")
    refs = [CheckpointRef("base", None, model), CheckpointRef("run/step_0002", ckpt, model, ("scene_check",))]
    jpeg = np.array([[-1.0, -2.0], [-1.5, -1.0]])
    base_total = np.array([[0.5, 1.0], [0.0, 0.5]])        # (seeds, prompts)
    run_total = np.array([[1.0, 1.0], [0.5, 1.0]])
    ev = lambda t: Evaluation(0, ["a", "b"], [0, 1], t, {"scene_check": t, "jpeg_compressibility": jpeg})  # noqa: E731
    results = [{"evaluation": ev(base_total), "diversity": np.array([0.2, 0.4]), "scheduler": "DDIMScheduler", "policy": "P"},
               {"evaluation": ev(run_total), "diversity": np.array([0.1, 0.2]), "scheduler": "DDIMScheduler", "policy": "P"}]
    s = summarise(cfg, refs, ["a", "b"], results, model)
    # d = run − base = 0.5, 0, 0.5, 0.5: mean 0.375; deviations .125, −.375, .125, .125:
    # s² = .1875 / 3 = .0625, s = .25, SE = .25 / √4 = .125; 0.375 > 2 × .125: better
    d = s["checkpoints"][1]["vs_reference"]["reward"]
    assert (d["mean"], d["se"], d["n"], d["verdict"]) == (pytest.approx(0.375), pytest.approx(0.125), 4, "better")
    # base's own reward: 0.5, 1, 0, 0.5 → mean 0.5, s = √(1/6), SE = s / 2
    assert s["checkpoints"][0]["rewards"]["reward"]["se"] == pytest.approx((1 / 6) ** 0.5 / 2)
    # diversity per prompt: −0.1, −0.2 → mean −0.15, s = 0.0707…, SE = 0.05: worse (beyond 2 SE)
    dv = s["checkpoints"][1]["vs_reference"]["diversity"]
    assert (dv["mean"], dv["se"], dv["verdict"]) == (pytest.approx(-0.15), pytest.approx(0.05), "worse")
    assert s["checkpoints"][1]["rewards"]["jpeg_compressibility"]["trained_on"] is False
    assert s["checkpoints"][1]["rewards"]["scene_check"]["trained_on"] is True
    assert s["settings"]["samples_per_checkpoint"] == 4 and s["settings"]["deterministic"] is False
    text = table(s)
    row = lambda name: next(line for line in text.splitlines() if line.startswith(name + " "))  # noqa: E731
    assert "+0.3750 ± 0.1250 better" in row("reward")
    assert "-0.1500 ± 0.0500 worse" in row("diversity")
    assert row("jpeg_compressibility *").endswith("+0.0000 ± 0.0000 no difference")  # out-of-domain, marked
    # each prompt one unit: prompt a's differences 0.5, 0.5 (mean 0.5), b's 0, 0.5 (0.25);
    # their std √(1/32), SE that / √2 = 0.125; 0.375 > 0.25: better
    dp = s["checkpoints"][1]["vs_reference_by_prompt"]
    assert (dp["mean"], dp["se"], dp["n"], dp["verdict"]) == (pytest.approx(0.375), pytest.approx(0.125), 2, "better")
    assert s["checkpoints"][0]["vs_reference_by_prompt"] is None
    assert "each prompt one unit (would other prompts gain?), run/step_0002: +0.3750 ± 0.1250 better (2 prompts)" in text


@pytest.mark.parametrize("over, field", [
    ({"prompts": {"prompts": ["a"], "world_split": "test"}}, "exactly one of prompts.prompts, prompts.file, prompts.world_split"),
    ({"seeds": [0, 0]}, "repeat"),
    ({"sampling": {"eta": -0.1}}, "sampling.eta"),
    ({"diversity": {"embedding": "clip"}}, "needs a clip_score, pickscore or aesthetic reward"),
    ({"checkpoints": ["base"], "model": None}, "model: needed"),
    ({"checkpoints": []}, "checkpoints"),
    ({"rewards": [{"name": "nope"}]}, "rewards.0.name"),
    ({"samples": 3}, "samples"),
])
def test_a_bad_evaluation_config_is_refused_naming_the_file_and_field(tmp_path, over, field):
    with pytest.raises(ConfigError) as err:
        load_eval_config(_cfg(tmp_path, **over))
    assert "eval.yaml" in str(err.value) and field in str(err.value)

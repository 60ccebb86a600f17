"""`adascope-ray eval` on a real checkpoint of the tiny model (no Ray): the rewards it
reports are those of a sampler that received the learner's weights directly, and the
deterministic sampler depends on the starting noise alone."""
import json

import numpy as np
import pytest
import torch

from adascope_ray.cli import main
from adascope_ray.config import RewardComponentConfig, dump_config
from adascope_ray.evaluation import evaluate_sampler
from adascope_ray.rewards.combine import CombinedReward
from adascope_ray.rollout import Sampler
from adascope_ray.runio import RunDir

from .conftest import pair_and_rollout

PROMPTS = ["a red circle", "a blue square", "a green triangle"]
REWARDS = [{"name": "jpeg_compressibility"}, {"name": "color_match", "weight": 0.0}]


def test_eval_reports_the_checkpoints_rewards_paired_with_base(make_cfg, tmp_path):
    cfg = make_cfg(run={"name": "r"})
    learner, _, scored = pair_and_rollout(cfg)
    learner.update(0, [scored])                                   # one update: weights v1
    run = RunDir.create(str(tmp_path), "r", overwrite=False)
    run.write_config(dump_config(cfg))
    run.save_checkpoint(1, learner.export(), {"iteration": 1, "final": True}, learner.state())

    # the reference: plain samplers, one with no update, one given the learner's
    # weights by parameter name (not through the exported diffusers file)
    score = CombinedReward([RewardComponentConfig(**r) for r in REWARDS])
    base = Sampler(cfg.model, cfg.sampling, cfg.sampler)
    trained = Sampler(cfg.model, cfg.sampling, cfg.sampler)
    trained.set_weights(learner.publish())
    want = {label: evaluate_sampler(s, score, PROMPTS, [0, 1])[0] for label, s in (("base", base), ("r/step_0001", trained))}
    assert not np.allclose(want["base"].components["jpeg_compressibility"], want["r/step_0001"].components["jpeg_compressibility"])

    conf = tmp_path / "eval.yaml"
    conf.write_text(json.dumps({"name": "e", "output_dir": str(tmp_path / "evals"), "checkpoints": ["base", str(run.root)],
                                "prompts": {"prompts": PROMPTS}, "seeds": [0, 1], "rewards": REWARDS, "grid_prompts": 2,
                                "sampling": {"num_steps": cfg.sampling.num_steps, "guidance_scale": cfg.sampling.guidance_scale,
                                             "batch_size": 4}}))
    assert main(["eval", str(conf), "--no-progress"]) == 0
    out = tmp_path / "evals" / "e"
    rows = [json.loads(line) for line in (out / "samples.jsonl").read_text().splitlines()]
    assert len(rows) == 2 * 2 * 3 and {r["checkpoint"] for r in rows} == set(want)
    for r in rows:
        ev = want[r["checkpoint"]]
        si, pi = ev.seeds.index(r["seed"]), r["prompt_index"]
        assert r["prompt"] == PROMPTS[pi] and (out / r["image"]).is_file()
        assert r["jpeg_compressibility"] == pytest.approx(float(ev.components["jpeg_compressibility"][si, pi]), abs=1e-3)
        assert r["color_match"] == pytest.approx(float(ev.components["color_match"][si, pi]), abs=1e-4)
    summary = json.loads((out / "summary.json").read_text())
    second = summary["checkpoints"][1]
    d = want["r/step_0001"].total - want["base"].total
    assert second["vs_reference"]["reward"]["mean"] == pytest.approx(d.mean(), abs=1e-3)
    assert second["rewards"]["color_match"]["trained_on"] is False      # scored, not trained on
    assert summary["settings"]["num_steps"] == cfg.sampling.num_steps and summary["settings"]["seeds"] == [0, 1]
    assert (out / "grid.png").is_file()

    # the same folder again is refused before anything is sampled (overwrite=true replaces it)
    assert main(["eval", str(conf), "--no-progress"]) == 2
    assert len((out / "samples.jsonl").read_text().splitlines()) == len(rows)


def test_eval_names_a_spec_that_is_not_a_checkpoint(tmp_path, capsys):
    conf = tmp_path / "eval.yaml"
    conf.write_text(json.dumps({"checkpoints": ["base", str(tmp_path / "nothing")], "model": {"path": "builtin:tiny"},
                                "prompts": {"prompts": PROMPTS}, "rewards": REWARDS}))
    assert main(["eval", str(conf)]) == 2
    assert "nothing: neither 'base', a run folder" in capsys.readouterr().err


def test_deterministic_sampling_depends_on_the_starting_noise_alone(tiny_cfg):
    sampler = Sampler(tiny_cfg.model, tiny_cfg.sampling, tiny_cfg.sampler)
    x_t = torch.randn(2, 4, 16, 16, generator=torch.Generator().manual_seed(5))
    chunk = lambda seed, det: sampler._sample_chunk(PROMPTS[:2], seed, x_start=x_t, deterministic=det)  # noqa: E731
    a, b = chunk(1, True), chunk(2, True)        # same x_T, different step-noise seeds
    np.testing.assert_array_equal(a["images"], b["images"])
    assert (a["log_probs"] == 0).all()          # no step drew noise
    assert not np.array_equal(chunk(1, False)["images"], chunk(2, False)["images"])  # the SDE does depend on it

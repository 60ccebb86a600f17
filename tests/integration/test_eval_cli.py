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


def test_eval_scores_the_preference_metrics_by_configuration_alone(tmp_path):
    """PickScore, CLIP score, aesthetic and HPSv2 (tiny random-init weights in the
    released layouts, loaded by the same loaders) on a Pick-a-Pic-style prompt file;
    each sample's scores re-computed from its saved image, and the CLIP diversity from
    the embeddings of those images."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    from PIL import Image

    from adascope_ray.models.tiny_clip import build_aesthetic_head, build_clip_folder, build_hps_checkpoint
    from adascope_ray.rewards import build_scorer
    from adascope_ray.rewards.clip_family import _ClipEmbedder

    clip = build_clip_folder(tmp_path / "clip")
    head = build_aesthetic_head(tmp_path / "head.safetensors", dim=_ClipEmbedder("clip_score", str(clip), None, "cpu", "float32").model.config.projection_dim)
    hps_cfg, hps = build_hps_checkpoint(tmp_path / "hps")
    pq.write_table(pa.table({"prompt": PROMPTS[:2], "caption_id": [1, 2]}), tmp_path / "pick.parquet")
    rewards = [{"name": "pickscore", "path": str(clip)}, {"name": "clip_score", "path": str(clip), "weight": 0.0},
               {"name": "aesthetic", "path": str(clip), "head_path": str(head), "weight": 0.0},
               {"name": "hpsv2", "path": str(hps), "open_clip_config": str(hps_cfg), "weight": 0.0}]
    conf = tmp_path / "eval.yaml"
    conf.write_text(json.dumps({"name": "pref", "output_dir": str(tmp_path / "evals"), "checkpoints": ["base"],
                                "model": {"path": "builtin:tiny", "cache_dir": str(tmp_path / "models")},
                                "prompts": {"file": str(tmp_path / "pick.parquet")}, "seeds": [0], "samples_per_prompt": 3,
                                "rewards": rewards, "diversity": {"embedding": "clip"},
                                "sampling": {"num_steps": 2, "eta": 0.0}}))
    assert main(["eval", str(conf), "--no-progress"]) == 0
    out = tmp_path / "evals" / "pref"
    rows = [json.loads(line) for line in (out / "samples.jsonl").read_text().splitlines()]
    assert len(rows) == 2 * 3
    images = np.stack([np.asarray(Image.open(out / r["image"])) for r in rows])
    prompts = [r["prompt"] for r in rows]
    for c in rewards:
        opts = {k: v for k, v in c.items() if k not in ("name", "weight")}
        want = build_scorer(c["name"], **opts, device="cpu")(images, prompts)
        np.testing.assert_allclose([r[c["name"]] for r in rows], want, rtol=1e-4, atol=1e-4)
    # diversity: per prompt, mean 1 − cos over the pairs of its 3 images (CLIP image embeddings)
    e = _ClipEmbedder("pickscore", str(clip), None, "cpu", "float32").image(images).numpy().astype(np.float64)
    per_prompt = [np.mean([1 - e[i] @ e[j] for i in idx for j in idx if i < j])
                  for idx in ([0, 1, 2], [3, 4, 5])]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["checkpoints"][0]["diversity"]["mean"] == pytest.approx(np.mean(per_prompt), abs=1e-5)
    assert summary["settings"]["deterministic"] is True and "pickscore" in summary["settings"]["diversity"]

"""model.adapter_steps: the LoRA acts only at steps lo ≤ k < hi. Checked against two
independent learners: one with no adapters at work (LoRA B = 0, the base model) and one
with the same perturbed LoRA acting at every step; a batch that mixes both kinds of step
must equal the row-by-row composition of the two, and the sampler and learner must
agree on the gated policy's log-probs (ratio 1 before an update)."""
import numpy as np
import pytest
import torch

from adascope_ray.learner import Learner, collate
from adascope_ray.models.adapter_gate import adapters_off

from .conftest import pair_and_rollout, recomputed_and_stored_log_probs


def _perturb(learner, scale=0.05, seed=0):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in learner.params:
            p.add_(scale * torch.randn(p.shape, generator=g))


@pytest.mark.parametrize("path", ["builtin:tiny", "builtin:tiny-sd3"])  # a UNet with DDIM; a transformer with the flow SDE
def test_gated_steps_are_the_base_model_and_the_others_the_adapted_one(make_cfg, path):
    cfg = make_cfg(model={"adapter_steps": [1, 3], "path": path})
    learner, _, scored = pair_and_rollout(cfg)
    ungated = Learner(cfg.model.model_copy(update={"adapter_steps": None}), cfg.sampling, cfg.learner, cfg.window,
                      cfg.advantage)
    base = Learner(cfg.model.model_copy(update={"adapter_steps": None}), cfg.sampling, cfg.learner, cfg.window,
                   cfg.advantage)  # LoRA B = 0: the base model
    _perturb(learner)
    _perturb(ungated)
    batch = collate([scored], learner.device, learner.policy.schedule)
    pairs = np.argwhere(np.ones(batch.log_probs.shape, bool))   # every (sample, step): steps 0..3 mixed
    with torch.no_grad():
        got = learner.step_outputs(batch, pairs).mean
        adapted = ungated.step_outputs(batch, pairs).mean
        plain = base.step_outputs(batch, pairs).mean
    inside = torch.from_numpy((pairs[:, 1] >= 1) & (pairs[:, 1] < 3))
    assert 0 < int(inside.sum()) < len(pairs)
    torch.testing.assert_close(got[inside], adapted[inside], rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(got[~inside], plain[~inside], rtol=1e-5, atol=1e-6)
    assert float((adapted[~inside] - plain[~inside]).abs().max()) > 1e-4  # the perturbation shows outside


def test_sampler_and_learner_agree_on_the_gated_policy(make_cfg):
    cfg = make_cfg(model={"adapter_steps": [0, 2]})
    from adascope_ray.data import PromptSchedule
    from adascope_ray.rewards import build_scorer
    from adascope_ray.rollout import Sampler
    from adascope_ray.types import RewardResult, ScoredRollout

    learner = Learner(cfg.model, cfg.sampling, cfg.learner, cfg.window, cfg.advantage)
    _perturb(learner)
    sampler = Sampler(cfg.model, cfg.sampling, cfg.sampler)
    sampler.set_weights(learner.publish())  # the perturbed LoRA, which acts only inside the gate

    batch = PromptSchedule(cfg.data.prompts, cfg.data.prompts_per_iteration, cfg.data.group_size, 0).batches(1, 1, sampler.version)[0]
    rollout = sampler.sample(batch)
    r = build_scorer("jpeg_compressibility")(rollout.images, rollout.prompts)
    got, stored = recomputed_and_stored_log_probs(learner, ScoredRollout(rollout, RewardResult(r, {"x": r})))
    torch.testing.assert_close(got, stored, rtol=1e-5, atol=1e-6)


def test_adapters_off_nests_and_restores(make_cfg):
    cfg = make_cfg()
    learner = Learner(cfg.model, cfg.sampling, cfg.learner, cfg.window, cfg.advantage)
    from peft.tuners.tuners_utils import BaseTunerLayer

    layer = next(m for m in learner.unet.modules() if isinstance(m, BaseTunerLayer))
    with adapters_off(learner.unet):
        with adapters_off(learner.unet):
            assert layer.disable_adapters
        assert layer.disable_adapters  # the inner exit leaves the outer's state
    assert not layer.disable_adapters


@pytest.mark.parametrize("tree, field", [
    ({"model": {"adapter_steps": [3, 3]}}, "model.adapter_steps"),
    ({"model": {"adapter_steps": [0, 2], "trainable": "full"}}, "model.trainable=lora"),
    ({"model": {"adapter_steps": [0, 9]}}, "sampling.num_steps"),
])
def test_config_refuses_a_bad_gate_by_name(make_cfg, tree, field):
    with pytest.raises(Exception, match=field):
        make_cfg(**tree)


def test_a_plain_pipeline_with_the_exported_lora_and_diffusers_gate_draws_what_the_sampler_draws(make_cfg, tmp_path):
    """η = 0 from one x_T: the Sampler's gated chain against StableDiffusionPipeline with
    load_lora_weights and diffusers_gate's callback; without the callback it differs."""
    from diffusers import StableDiffusionPipeline

    from adascope_ray.evaluation import eval_batches
    from adascope_ray.models.adapter_gate import diffusers_gate
    from adascope_ray.models.loader import resolve_model_path
    from adascope_ray.rollout import Sampler
    from adascope_ray.runio import RunDir

    cfg = make_cfg(model={"adapter_steps": [0, 2]})
    learner = Learner(cfg.model, cfg.sampling, cfg.learner, cfg.window, cfg.advantage)
    _perturb(learner)
    sampler = Sampler(cfg.model, cfg.sampling, cfg.sampler)
    sampler.set_weights(learner.publish())
    prompts = ["a red circle", "a blue square"]
    det = sampler.sample(eval_batches(prompts, [0], sampler.version)[0], deterministic=True)
    x_T, want = torch.from_numpy(det.latents[:, 0].copy()), torch.from_numpy(det.latents[:, -1].copy())
    ckpt = RunDir.create(str(tmp_path), "r", overwrite=False).save_checkpoint(1, learner.export(), {"iteration": 1})
    pipe = StableDiffusionPipeline.from_pretrained(str(resolve_model_path(cfg.model)), local_files_only=True,
                                                   safety_checker=None, requires_safety_checker=False)
    pipe.set_progress_bar_config(disable=True)
    pipe.load_lora_weights(str(ckpt))
    run = dict(num_inference_steps=cfg.sampling.num_steps, guidance_scale=cfg.sampling.guidance_scale, eta=0.0,
               height=cfg.model.resolution, width=cfg.model.resolution, output_type="latent")
    with torch.no_grad():
        gated = pipe(prompts, latents=x_T.clone(), callback_on_step_end=diffusers_gate(pipe, (0, 2)), **run).images
        pipe.enable_lora()
        ungated = pipe(prompts, latents=x_T.clone(), **run).images
    torch.testing.assert_close(gated, want, rtol=1e-4, atol=1e-4)
    assert float((ungated - want).abs().max()) > 1e-3

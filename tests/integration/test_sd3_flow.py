"""The SD3 family through the same sampler, learner and checkpoint code: a tiny
random-init SD3Transformer2DModel + FlowMatchEulerDiscreteScheduler pipeline, saved and
loaded like a real one (no Ray)."""
import numpy as np
import pytest
import torch

from .conftest import pair_and_rollout, plain_pipeline_with_exported_lora, recomputed_and_stored_log_probs


@pytest.fixture(scope="module")
def sd3(make_cfg):
    cfg = make_cfg(model={"path": "builtin:tiny-sd3"}, window={"strategy": "full"}, sampling={"eta": 0.7})
    learner, sampler, scored = pair_and_rollout(cfg)
    return cfg, learner, sampler, scored


def test_loaded_with_the_real_sd3_classes(sd3):
    from diffusers import FlowMatchEulerDiscreteScheduler, SD3Transformer2DModel, StableDiffusion3Pipeline

    _, learner, sampler, _ = sd3
    assert isinstance(sampler.pipe, StableDiffusion3Pipeline) and sampler.pipe.text_encoder_3 is None
    assert isinstance(sampler.denoiser, SD3Transformer2DModel) and isinstance(learner.unet, SD3Transformer2DModel)
    assert isinstance(sampler.pipe.scheduler, FlowMatchEulerDiscreteScheduler)


def test_rollout_carries_pooled_text_and_finite_log_probs(sd3):
    cfg, _, sampler, s = sd3
    r, b, k = s.rollout, 4, cfg.sampling.num_steps
    assert r.latents.shape == (b, k + 1, 4, 16, 16) and r.log_probs.shape == (b, k)
    assert r.pooled_embeds.shape == (b, 64) and r.negative_pooled.shape == (1, 64)
    assert np.isfinite(r.log_probs).all() and r.images.shape == (b, 32, 32, 3)
    sig = sampler.policy.schedule.sigmas
    assert float(sig[0]) == 1.0 and float(sig[-1]) == 0.0 and bool((sig[1:] < sig[:-1]).all())


def test_learner_recomputes_the_samplers_log_probs(sd3):
    """Ratio 1 before the first update, whatever the micro-batch (ADASCOPE.md invariant)."""
    _, learner, _, s = sd3
    got, want = recomputed_and_stored_log_probs(learner, s)
    torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)


def test_update_trains_the_transformer_lora_and_exports_for_a_plain_pipeline(sd3, tmp_path):
    cfg, learner, _, s = sd3
    lora = {n: p.detach().clone() for n, p in learner.unet.named_parameters() if p.requires_grad}
    stats = learner.update(0, [s])
    assert stats.trained_pairs == 4 * cfg.sampling.num_steps and np.isfinite(stats.loss)
    changed = [n for n, p in learner.unet.named_parameters() if p.requires_grad and not torch.equal(p, lora[n])]
    assert changed and all("lora" in n for n in lora)

    x, emb, pooled = torch.randn(1, 4, 16, 16), torch.randn(1, 77, 64), torch.randn(1, 64)
    t = torch.tensor([500.0])
    run = lambda m: m(hidden_states=x, timestep=t, encoder_hidden_states=emb, pooled_projections=pooled).sample  # noqa: E731
    # diffusers' own SD3 LoRA loader reads our file
    plain, got, want = plain_pipeline_with_exported_lora(cfg, learner, tmp_path, run, text_encoder_3=None, tokenizer_3=None)
    assert not torch.allclose(plain, want, atol=1e-4)  # the update moved the policy
    torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-4)


def test_a_placed_window_runs_euler_steps_outside_it(sd3):
    """window.placement = sampler on a flow model: outside [1, 3) the step is diffusers'
    Euler step on the model's own velocity (no noise), and the group shares step 0."""
    from diffusers import FlowMatchEulerDiscreteScheduler

    from adascope_ray.types import PromptBatch

    cfg, _, sampler, _ = sd3
    k = cfg.sampling.num_steps
    r = sampler.sample(PromptBatch(["a red circle"] * 2 + ["a blue square"] * 2, np.array([0, 0, 1, 1]), 9,
                                   sampler.version, window=(1, 3)))
    assert r.stochastic.tolist() == [i in (1, 2) for i in range(k)]
    assert (r.log_probs[:, ~r.stochastic] == 0).all() and (r.log_probs[:, r.stochastic] != 0).all()
    assert r.latent_steps.tolist() == [1, 2, 3]  # only the window's latents travel: x_1, x_2, x_3
    np.testing.assert_allclose(r.latents[0, 0], r.latents[1, 0], atol=1e-5)  # x_1: shared x_T and step 0
    assert not np.allclose(r.latents[0, 1], r.latents[1, 1])
    sch = FlowMatchEulerDiscreteScheduler.from_config(sampler.pipe.scheduler.config)
    sch.set_timesteps(k)
    cond, uncond, pooled, uncond_pooled = sampler._conditioning(r.prompts)

    def euler(x, steps):  # diffusers' Euler step on the model's own velocity
        for step in steps:
            with torch.no_grad():
                v = sampler.policy.predict_velocity(x, sch.timesteps[step].expand(4), cond, uncond, pooled, uncond_pooled)
            sch._step_index = None
            x = sch.step(v, sch.timesteps[step], x).prev_sample
        return x

    x_T = sampler._group_starts(PromptBatch(r.prompts, r.group_ids, 9, sampler.version)) * getattr(sampler.pipe.scheduler, "init_noise_sigma", 1.0)
    torch.testing.assert_close(torch.from_numpy(r.latents[:, 0]), euler(x_T, [0]), atol=1e-4, rtol=1e-4)
    got = sampler._decode(euler(torch.from_numpy(r.latents[:, -1]), range(3, k))).astype(np.int16)
    assert np.abs(got - r.images.astype(np.int16)).max() <= 1  # the same float image, rounded to uint8

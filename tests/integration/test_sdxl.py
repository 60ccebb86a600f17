"""The SDXL family through the same sampler, learner and checkpoint code: a tiny
random-init StableDiffusionXLPipeline (two text encoders, a UNet with "text_time" added
conditioning, the Euler scheduler SDXL folders ship), saved and loaded like a real one."""
import numpy as np
import pytest
import torch

from .conftest import pair_and_rollout, plain_pipeline_with_exported_lora, recomputed_and_stored_log_probs


@pytest.fixture(scope="module")
def sdxl(make_cfg):
    cfg = make_cfg(model={"path": "builtin:tiny-sdxl"}, window={"strategy": "full"})
    learner, sampler, scored = pair_and_rollout(cfg)
    return cfg, learner, sampler, scored


def test_loaded_with_the_real_sdxl_classes_and_ddim_from_the_euler_config(sdxl):
    from diffusers import DDIMScheduler, StableDiffusionXLPipeline, UNet2DConditionModel

    _, learner, sampler, _ = sdxl
    pipe = sampler.pipe
    assert isinstance(pipe, StableDiffusionXLPipeline) and isinstance(learner.unet, UNet2DConditionModel)
    assert learner.unet.config.addition_embed_type == "text_time"
    # the folder holds EulerDiscreteScheduler; the policy runs DDIM with the same betas
    assert isinstance(pipe.scheduler, DDIMScheduler) and pipe.scheduler.config.beta_schedule == "scaled_linear"
    assert pipe.scheduler.config.clip_sample is False and pipe.scheduler.config.set_alpha_to_one is False
    # ᾱ_t = Π (1 − β_i), β from the scaled-linear schedule: (√0.00085 + i/999 (√0.012 − √0.00085))²
    betas = torch.linspace(0.00085**0.5, 0.012**0.5, 1000, dtype=torch.float64) ** 2
    torch.testing.assert_close(pipe.scheduler.alphas_cumprod.double(), torch.cumprod(1 - betas, 0), atol=1e-6, rtol=1e-5)


def test_rollout_carries_pooled_text_and_finite_log_probs(sdxl):
    cfg, _, _, s = sdxl
    r, b, k = s.rollout, 4, cfg.sampling.num_steps
    assert r.latents.shape == (b, k + 1, 4, 16, 16) and r.log_probs.shape == (b, k)
    assert r.prompt_embeds.shape == (b, 77, 64)          # the two encoders' 32 + 32 features
    assert r.pooled_embeds.shape == (b, 32) and np.isfinite(r.log_probs).all()
    # force_zeros_for_empty_prompt: CFG's unconditional branch is zeros, as SDXL's __call__ does
    assert not r.negative_embeds.any() and not r.negative_pooled.any()


def test_policy_guided_eps_and_schedule_follow_the_sdxl_pipelines_own_sampling(sdxl):
    """The policy's guided ε̂ (its prompt encoding, pooled text, size ids, zero
    unconditional branch) and its schedule, stepped with the η = 0 DDIM update written
    out here (x_prev = √ᾱ_prev x̂0 + √(1−ᾱ_prev) ε̂), land where
    StableDiffusionXLPipeline.__call__ with eta=0 lands from the same x_T."""
    from adascope_ray.models.policy import encode_prompts, unconditional

    cfg, _, sampler, _ = sdxl
    pipe, policy, k = sampler.pipe, sampler.policy, cfg.sampling.num_steps
    s = policy.schedule
    prompts = ["a red circle", "a blue square"]
    x_T = torch.randn(2, 4, 16, 16, generator=torch.Generator().manual_seed(3))
    cond, pooled = encode_prompts(pipe, prompts)
    u, up = unconditional(pipe)
    x = x_T
    with torch.no_grad():
        for i in range(k):
            a_t, a_prev = s.alpha_bars[i], s.alpha_bars_prev[i]
            eps = policy.predict_eps(x, s.timesteps[i].expand(2), cond, u.expand(2, -1, -1), a_t,
                                     pooled, up.expand(2, -1))
            x0 = (x - (1 - a_t).sqrt() * eps) / a_t.sqrt()
            x = a_prev.sqrt() * x0 + (1 - a_prev).sqrt() * eps
        want = pipe(prompts, num_inference_steps=k, guidance_scale=cfg.sampling.guidance_scale, eta=0.0,
                    latents=x_T.clone(), output_type="latent").images
    torch.testing.assert_close(x, want, atol=1e-5, rtol=1e-4)


def test_learner_recomputes_the_samplers_log_probs(sdxl):
    """Ratio 1 before the first update, whatever the micro-batch (ADASCOPE.md invariant)."""
    _, learner, _, s = sdxl
    got, want = recomputed_and_stored_log_probs(learner, s)
    torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)


def test_update_trains_the_unet_lora_and_exports_for_a_plain_sdxl_pipeline(sdxl, tmp_path):
    cfg, learner, _, s = sdxl
    stats = learner.update(0, [s])
    assert stats.trained_pairs == 4 * cfg.sampling.num_steps and np.isfinite(stats.loss)
    x, emb, t = torch.randn(1, 4, 16, 16), torch.randn(1, 77, 64), torch.tensor([500])
    added = {"text_embeds": torch.randn(1, 32), "time_ids": torch.tensor([[32.0, 32, 0, 0, 32, 32]])}
    run = lambda m: m(x, t, encoder_hidden_states=emb, added_cond_kwargs=added).sample  # noqa: E731
    # diffusers' own SDXL LoRA loader reads our file
    plain, got, want = plain_pipeline_with_exported_lora(cfg, learner, tmp_path, run)
    assert not torch.allclose(plain, want, atol=1e-4)  # the update moved the policy
    torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-4)

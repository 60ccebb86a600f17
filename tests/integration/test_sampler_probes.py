"""The signals the sampler probes at a few steps, recomputed here from the sampler's own
per-step decoded predictions (`trace`) and the reward models called directly:
window.semantic.source = embedding (C_k, the cosine of a CLIP-family reward's image
embeddings of decode(x̂0_k) and of the final image) and window.reward_trace (R_k, the
run's reward of decode(x̂0_k))."""
import numpy as np
import pytest

from adascope_ray.config import RewardTraceConfig, SemanticConfig
from adascope_ray.data import PromptSchedule
from adascope_ray.models.tiny_clip import build_clip_folder
from adascope_ray.rewards import build_scorer
from adascope_ray.rewards.clip_family import image_embedder
from adascope_ray.rollout import Sampler


def test_embedding_c_k_is_the_probed_cosine_and_its_passes_are_counted(make_cfg, tmp_path):
    cfg = make_cfg(sampling={"num_steps": 5, "guidance_scale": 3.0})
    clip = str(build_clip_folder(tmp_path / "clip"))
    scorer = build_scorer("pickscore", path=clip)
    embed = image_embedder("pickscore", scorer)
    sem = SemanticConfig(source="embedding", reward="pickscore", probe_every=2)  # probes 0, 2, 4
    sampler = Sampler(cfg.model, cfg.sampling, cfg.sampler, semantic=sem, embed=embed)
    sampler.version = 0  # the base weights: nothing published is needed to sample them
    batch = PromptSchedule(cfg.data.prompts, 2, 2, 0).batches(0, 1, 0)[0]
    rollout = sampler.sample(batch)
    b, k = rollout.batch_size, 5
    assert rollout.counters == {"probe_decodes": b * 3, "probe_embeds": b * 4, "latents_sent": b * (k + 1)}

    # the same draws through trace(): every step's decode(x̂0_k) and the final images
    traced = sampler.trace(list(batch.prompts), batch.seed * 100_003)
    assert np.array_equal(traced["images"], rollout.images)
    final = embed(traced["images"])                                              # (b, D)
    want = np.zeros((b, k))
    for step in range(k):
        probe = (step // 2) * 2                                                  # the last probe <= step
        e = embed(traced["step_images"][:, probe])
        want[:, step] = (e * final).sum(1) / np.linalg.norm(e, axis=1) / np.linalg.norm(final, axis=1)
    np.testing.assert_allclose(rollout.signals.semantic, want, atol=2e-3)
    assert not np.allclose(want[:, 0], want[:, -1])  # the probes differ: the hold is not a constant

    # an evaluation (η = 0) trains nothing: no probes, the latent C_k
    evaluated = sampler.sample(batch, deterministic=True)
    assert evaluated.counters == {"latents_sent": b * (k + 1)}


def test_an_embedding_source_without_an_embedder_is_refused(tiny_cfg):
    with pytest.raises(ValueError, match="no image embedder was given for reward 'pickscore'"):
        Sampler(tiny_cfg.model, tiny_cfg.sampling, tiny_cfg.sampler,
                semantic=SemanticConfig(source="embedding", reward="pickscore"))


def test_a_reward_without_an_image_embedder_is_named():
    with pytest.raises(ValueError, match="reward 'jpeg_compressibility' has no CLIP image embedder"):
        image_embedder("jpeg_compressibility", build_scorer("jpeg_compressibility"))


def test_reward_trace_scores_the_probed_predictions_and_shares_their_decodes(make_cfg, tmp_path):
    cfg = make_cfg(sampling={"num_steps": 5, "guidance_scale": 3.0})
    clip = str(build_clip_folder(tmp_path / "clip"))
    embed = image_embedder("pickscore", build_scorer("pickscore", path=clip))
    jpeg = build_scorer("jpeg_compressibility")
    calls = []

    def score(images, prompts):
        calls.append(list(prompts))
        return jpeg(images, prompts)

    # C_k probes 0, 2, 4; R_k probes 0, 4: three steps decoded once each, shared
    sampler = Sampler(cfg.model, cfg.sampling, cfg.sampler, semantic=SemanticConfig(source="embedding", reward="pickscore", probe_every=2),
                      embed=embed, reward_trace=RewardTraceConfig(enabled=True, probe_every=4), score=score)
    sampler.version = 0
    batch = PromptSchedule(cfg.data.prompts, 2, 2, 0).batches(0, 1, 0)[0]
    rollout = sampler.sample(batch)
    b = rollout.batch_size
    assert rollout.counters == {"probe_decodes": b * 3, "probe_embeds": b * 4, "probe_scores": b * 2, "latents_sent": b * 6}
    assert calls == [[p for p in batch.prompts for _ in (0, 4)]]  # each sample's own prompt, per probe

    traced = sampler.trace(list(batch.prompts), batch.seed * 100_003)
    want = np.stack([jpeg(traced["step_images"][:, probe], list(batch.prompts)) for probe in (0, 0, 0, 0, 4)], 1)
    np.testing.assert_allclose(rollout.signals.reward, want, rtol=1e-4, atol=2e-3)

    with pytest.raises(ValueError, match="no reward was given to score the probed steps"):
        Sampler(cfg.model, cfg.sampling, cfg.sampler, reward_trace=RewardTraceConfig(enabled=True))


def rows_of(mask):
    return [np.nonzero(r)[0].tolist() for r in mask]


def test_the_learner_ends_the_window_where_the_reward_evolution_says(make_cfg):
    """window.adascope.tau_r through the Learner: its window equals the rule applied by
    hand to the batch's traces, and differs from the rule without τ_r."""
    from adascope_ray.core.window import adascope_window
    from adascope_ray.learner import Learner, collate
    from adascope_ray.types import RewardResult, ScoredRollout

    cfg = make_cfg(sampling={"num_steps": 8, "guidance_scale": 3.0}, data={"group_size": 4},
                   window={"reward_trace": {"enabled": True, "probe_every": 1},
                           "adascope": {"tau_r": 0.5, "tau_s": -1.0, "tau_e": 1.0, "eps_conv": 0.0, "w_min": 1,
                                        "w_max": 8, "use_prior": False}})
    jpeg = build_scorer("jpeg_compressibility")
    learner = Learner(cfg.model, cfg.sampling, cfg.learner, cfg.window, cfg.advantage)
    sampler = Sampler(cfg.model, cfg.sampling, cfg.sampler, reward_trace=cfg.window.reward_trace, score=jpeg)
    sampler.set_weights(learner.publish())
    rollout = sampler.sample(PromptSchedule(cfg.data.prompts, 2, 4, 0).batches(0, 1, sampler.version)[0])
    r = jpeg(rollout.images, rollout.prompts)
    batch = collate([ScoredRollout(rollout, RewardResult(r, {"jpeg_compressibility": r}))], learner.device, learner.policy.schedule)
    got, _, _ = learner.window(0, batch)
    rule = dict(k_lo=0, k_hi=8, tau_s=-1.0, tau_e=1.0, eps_conv=0.0, w_min=1, w_max=8)
    want = adascope_window(batch.structural, batch.semantic, batch.convergence, batch.group_ids, **rule,
                           reward_trace=rollout.signals.reward, tau_r=0.5)
    assert np.array_equal(got.mask, want.mask)
    without = adascope_window(batch.structural, batch.semantic, batch.convergence, batch.group_ids, **rule)
    # without τ_r only C_{K-1} = 1 ends it (steps 0-6); with it every group ends earlier
    assert rows_of(without.mask) == [list(range(7))] * 8
    assert (want.mask.sum(1) < 7).all() and (want.mask <= without.mask).all()

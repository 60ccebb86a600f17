"""Sampler.continue_from and Sampler.trace, the tools benchmarks/signal_curves.py uses to
measure where the reward is decided: a continuation applies exactly the remaining steps."""
import numpy as np

from adascope_ray.rollout import Sampler
from adascope_ray.types import PromptBatch


def test_continuation_from_any_step_retraces_a_near_deterministic_trajectory(make_cfg):
    # eta -> 0: the step's noise term vanishes, so finishing from any stored x_k must land
    # on the image the trajectory ended with, whatever noise the continuation draws
    cfg = make_cfg(sampling={"eta": 1e-6})
    sampler = Sampler(cfg.model, cfg.sampling, cfg.sampler)
    prompts = ["a red circle", "a blue square"]
    r = sampler.sample(PromptBatch(prompts=prompts, group_ids=np.arange(2), seed=3, policy_version=sampler.version))
    k_total = r.latents.shape[1] - 1
    for k in range(k_total + 1):
        imgs = sampler.continue_from(prompts, r.latents[:, k], k, seed=1000 + k)
        assert np.abs(imgs.astype(int) - r.images.astype(int)).max() <= 1, k


def test_continuations_differ_with_full_noise_and_trace_matches_sample(make_cfg):
    cfg = make_cfg()  # eta = 1
    sampler = Sampler(cfg.model, cfg.sampling, cfg.sampler)
    prompts = ["a red circle", "a blue square"]
    r = sampler.sample(PromptBatch(prompts=prompts, group_ids=np.arange(2), seed=5, policy_version=sampler.version))
    a = sampler.continue_from(prompts, r.latents[:, 1], 1, seed=1)
    b = sampler.continue_from(prompts, r.latents[:, 1], 1, seed=2)
    assert not np.array_equal(a, b)                                   # fresh noise, another ending
    np.testing.assert_array_equal(a, sampler.continue_from(prompts, r.latents[:, 1], 1, seed=1))  # reproducible
    t = sampler.trace(prompts, 5 * 100_003)                           # the seed sample() gives its first chunk
    np.testing.assert_array_equal(t["images"], r.images)
    k = r.latents.shape[1] - 1
    assert t["step_images"].shape == (2, k, *r.images.shape[1:]) and t["step_images"].dtype == np.uint8


def test_per_group_initial_noise_shares_x_T_within_a_group_only(make_cfg):
    # sampling.initial_noise = per_group: the rows of a group start from one x_T (the
    # stored latents[:, 0]), different groups from different ones, whatever the chunking;
    # the per-step noise still differs, so the group's trajectories part after step 0
    prompts = ["a red circle"] * 3 + ["a blue square"] * 3
    gids = np.repeat([0, 1], 3)
    starts = []
    for batch_size in (6, 4):  # one chunk, or a group split across two chunks
        cfg = make_cfg(sampling={"initial_noise": "per_group"}, sampler={"batch_size": batch_size})
        sampler = Sampler(cfg.model, cfg.sampling, cfg.sampler)
        r = sampler.sample(PromptBatch(prompts=prompts, group_ids=gids, seed=4, policy_version=sampler.version))
        x_T = r.latents[:, 0]
        np.testing.assert_array_equal(x_T[0], x_T[1])
        np.testing.assert_array_equal(x_T[0], x_T[2])
        np.testing.assert_array_equal(x_T[3], x_T[5])
        assert not np.allclose(x_T[0], x_T[3])
        assert not np.allclose(r.latents[0, 1], r.latents[1, 1])  # fresh step noise per row
        starts.append(x_T)
    np.testing.assert_array_equal(starts[0], starts[1])
    default = make_cfg()
    r = Sampler(default.model, default.sampling, default.sampler).sample(
        PromptBatch(prompts=prompts, group_ids=gids, seed=4, policy_version=-1))
    assert not np.allclose(r.latents[0, 0], r.latents[1, 0])  # per_sample: every row its own start

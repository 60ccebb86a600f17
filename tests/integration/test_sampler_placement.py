"""window.placement = sampler: the sampler runs only the window's steps with noise, a
group shares one deterministic prefix, and the learner trains exactly the noisy steps."""
import numpy as np
import pytest
import torch
from diffusers import DDIMScheduler

from adascope_ray.data import PromptSchedule
from adascope_ray.learner import Learner
from adascope_ray.rewards import build_scorer
from adascope_ray.rollout import Sampler
from adascope_ray.types import RewardResult, ScoredRollout

K, START, END = 6, 2, 5


@pytest.fixture(scope="module")
def placed(make_cfg):
    # 2 prompts x 3 samples, chunks of 4 rows: group 1 is split across the two chunks
    cfg = make_cfg(data={"group_size": 3}, sampling={"num_steps": K, "initial_noise": "per_group"},
                   window={"placement": "sampler", "strategy": "sliding",
                           "sliding": {"size": 3, "start": 1, "every": 1, "stride": 1}})
    learner = Learner(cfg.model, cfg.sampling, cfg.learner, cfg.window, cfg.advantage)
    sampler = Sampler(cfg.model, cfg.sampling, cfg.sampler, pool=cfg.window.pool)
    sampler.set_weights(learner.publish())
    batch = PromptSchedule(cfg.data.prompts, 2, 3, 0).batches(0, 1, sampler.version, window=(START, END))[0]
    return cfg, sampler, learner, sampler.sample(batch)


def test_only_the_window_draws_noise_and_the_group_shares_its_prefix(placed):
    _, _, _, r = placed
    assert r.stochastic.tolist() == [False, False, True, True, True, False]
    assert (r.log_probs[:, ~r.stochastic] == 0).all() and (r.log_probs[:, r.stochastic] != 0).all()
    groups = [np.flatnonzero(r.group_ids == g) for g in np.unique(r.group_ids)]
    for rows in groups:  # x_0 … x_START equal within a group (across the chunk split too), apart after
        for k in range(START + 1):
            np.testing.assert_allclose(r.latents[rows, k], np.broadcast_to(r.latents[rows[0], k], r.latents[rows, k].shape),
                                       atol=1e-5)
        assert not np.allclose(r.latents[rows[0], START + 1], r.latents[rows[1], START + 1])
    assert not np.allclose(r.latents[groups[0][0], 0], r.latents[groups[1][0], 0])
    # what really ran: the prefix once per group in each chunk (chunk 0 holds groups 0, 1;
    # chunk 1 group 1), every row from START on; CFG doubles each row
    assert r.sampler_forward_rows == 2 * ((2 + 1) * START + 6 * (K - START))


def test_the_steps_after_the_window_are_diffusers_deterministic_ddim(placed):
    _, sampler, _, r = placed
    sch = DDIMScheduler.from_config(sampler.pipe.scheduler.config)
    sch.set_timesteps(K)
    cond, uncond, _, _ = sampler._conditioning(r.prompts)
    for k in range(END, K):
        x_k = torch.from_numpy(r.latents[:, k])
        t = sch.timesteps[k]
        with torch.no_grad():
            out = sampler.policy.predict(x_k, torch.full((len(x_k),), int(t)), cond, uncond)
        want = sch.step(out, t, x_k, eta=0.0).prev_sample
        torch.testing.assert_close(torch.from_numpy(r.latents[:, k + 1]), want, rtol=1e-4, atol=1e-4)


def test_the_learner_trains_the_noisy_steps_and_publishes_the_next_window(placed):
    cfg, _, learner, r = placed
    score = build_scorer("jpeg_incompressibility")(r.images, r.prompts)
    stats = learner.update(1, [ScoredRollout(r, RewardResult(score, {"jpeg_incompressibility": score}))])
    valid = stats.trained_pairs // (END - START)
    assert stats.window_hist == [0, 0, valid, valid, valid, 0] and valid > 0
    assert stats.window_start_mean == START and stats.window_length_mean == END - START
    # sliding at iteration 1 (start 1, moved once by 1, size 3): the next rollouts' window
    assert stats.next_window == (2, 5) and learner.state().meta["next_window"] == [2, 5]


def test_a_window_outside_the_schedule_is_refused(placed):
    _, sampler, _, _ = placed
    batch = PromptSchedule(["a red circle"], 1, 2, 0).batches(0, 1, sampler.version, window=(3, K + 1))[0]
    with pytest.raises(ValueError, match="batch.window"):
        sampler.sample(batch)

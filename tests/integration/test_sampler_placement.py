"""window.placement = sampler: the sampler runs only the window's steps with noise, a
group shares one deterministic prefix, only the window's latents travel, and the
learner trains exactly the noisy steps."""
import numpy as np
import pytest
import torch
from diffusers import DDIMScheduler

from adascope_ray.data import PromptSchedule
from adascope_ray.learner import Learner
from adascope_ray.learner.learner import collate
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
    return cfg, sampler, learner, sampler.sample(batch), batch


def _ddim(sampler, r, x, steps):
    """diffusers' own DDIM (η = 0) from x over `steps`, with the sampler's denoiser and CFG."""
    sch = DDIMScheduler.from_config(sampler.pipe.scheduler.config)
    sch.set_timesteps(K)
    cond, uncond, _, _ = sampler._conditioning(r.prompts)
    for k in steps:
        t = sch.timesteps[k]
        with torch.no_grad():
            out = sampler.policy.predict(x, torch.full((len(x),), int(t)), cond, uncond)
        x = sch.step(out, t, x, eta=0.0).prev_sample
    return x


def test_only_the_window_draws_noise_and_only_its_latents_travel(placed):
    _, sampler, _, r, batch = placed
    assert r.stochastic.tolist() == [False, False, True, True, True, False]
    assert (r.log_probs[:, ~r.stochastic] == 0).all() and (r.log_probs[:, r.stochastic] != 0).all()
    # x_START … x_END: what the window's steps read and write, nothing before or after
    assert r.latent_steps.tolist() == list(range(START, END + 1)) and r.latents.shape[1] == END - START + 1
    assert r.counters["latents_sent"] == 6 * (END - START + 1)
    # the prefix: x_START is diffusers' DDIM from the group's x_T, the same for every row
    # of a group (across the chunk split too); the rows part at the first noisy step
    want = _ddim(sampler, r, sampler._group_starts(batch), range(START))
    torch.testing.assert_close(torch.from_numpy(r.latents[:, 0]), want, rtol=1e-4, atol=1e-4)
    groups = [np.flatnonzero(r.group_ids == g) for g in np.unique(r.group_ids)]
    for rows in groups:
        np.testing.assert_allclose(r.latents[rows, 0], np.broadcast_to(r.latents[rows[0], 0], r.latents[rows, 0].shape),
                                   atol=1e-5)
        assert not np.allclose(r.latents[rows[0], 1], r.latents[rows[1], 1])
    assert not np.allclose(r.latents[groups[0][0], 0], r.latents[groups[1][0], 0])
    # what really ran: the prefix once per group in each chunk (chunk 0 holds groups 0, 1;
    # chunk 1 group 1), every row from START on; CFG doubles each row
    assert r.sampler_forward_rows == 2 * ((2 + 1) * START + 6 * (K - START))


def test_the_steps_after_the_window_are_diffusers_deterministic_ddim(placed):
    _, sampler, _, r, _ = placed
    # the image is diffusers' DDIM from the last latent sent, x_END, to the end
    x_k = _ddim(sampler, r, torch.from_numpy(r.latents[:, -1]), range(END, K))
    got = sampler._decode(x_k).astype(np.int16)
    assert np.abs(got - r.images.astype(np.int16)).max() <= 1  # uint8 rounding of the same float image


def test_the_learner_reads_the_sent_latents_at_their_steps(placed):
    _, _, learner, r, _ = placed
    batch = collate([ScoredRollout(r, RewardResult(np.zeros(6), {}))], learner.device, learner.policy.schedule)
    pairs = np.array([(i, k) for i in range(6) for k in range(START, END)])
    # before any update the learner's log-probs are the sampler's own, step by step
    np.testing.assert_allclose(learner.log_probs(batch, pairs).detach().numpy(), r.log_probs[pairs[:, 0], pairs[:, 1]],
                               rtol=1e-4, atol=1e-4)
    with pytest.raises(IndexError, match=r"k = \[0\] was not sent"):
        learner.log_probs(batch, np.array([(0, 0)]))


def test_the_learner_trains_the_noisy_steps_and_publishes_the_next_window(placed):
    cfg, _, learner, r, _ = placed
    score = build_scorer("jpeg_incompressibility")(r.images, r.prompts)
    stats = learner.update(1, [ScoredRollout(r, RewardResult(score, {"jpeg_incompressibility": score}))])
    valid = stats.trained_pairs // (END - START)
    assert stats.window_hist == [0, 0, valid, valid, valid, 0] and valid > 0
    assert stats.window_start_mean == START and stats.window_length_mean == END - START
    # sliding at iteration 1 (start 1, moved once by 1, size 3): the next rollouts' window
    assert stats.next_window == (2, 5) and learner.state().meta["next_window"] == [2, 5]


def test_a_window_outside_the_schedule_is_refused(placed):
    _, sampler, _, _, _ = placed
    batch = PromptSchedule(["a red circle"], 1, 2, 0).batches(0, 1, sampler.version, window=(3, K + 1))[0]
    with pytest.raises(ValueError, match="batch.window"):
        sampler.sample(batch)

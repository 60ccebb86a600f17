"""learner.algorithm = raft on the tiny model, no Ray: its loss is diffusers' own noising
and the conditional UNet's error, an update fits each group's best sample at the
window's steps only, and a batch with nothing to rank trains nothing."""
import dataclasses

import numpy as np
import pytest
import torch
from diffusers import DDIMScheduler

from adascope_ray.data import PromptSchedule
from adascope_ray.learner import Learner
from adascope_ray.learner.learner import collate
from adascope_ray.learner.raft import Raft
from adascope_ray.rollout import Sampler
from adascope_ray.types import RewardResult, ScoredRollout

SLIDING = {"strategy": "sliding", "sliding": {"size": 2, "start": 1, "every": 1000, "stride": 1}}


@pytest.fixture(scope="module")
def raft(make_cfg):
    cfg = make_cfg(data={"group_size": 4}, window=SLIDING,
                   learner={"algorithm": "raft", "lr": 1e-3, "raft": {"top_k": 1, "batch_size": 6, "optimizer_steps": 2}})
    learner = Learner(cfg.model, cfg.sampling, cfg.learner, cfg.window, cfg.advantage)
    sampler = Sampler(cfg.model, cfg.sampling, cfg.sampler)
    sampler.set_weights(learner.publish())
    rollout = sampler.sample(PromptSchedule(cfg.data.prompts, 2, 4, 0).batches(0, 1, sampler.version)[0])
    return cfg, learner, sampler, rollout


def _scored(rollout, rewards):
    r = np.asarray(rewards, np.float64)
    return ScoredRollout(rollout, RewardResult(r, {"r": r}))


def _weights(learner):
    return torch.cat([p.detach().flatten().clone() for p in learner.params])


def test_the_loss_is_diffusers_noising_and_the_conditional_unets_error(raft):
    cfg, learner, sampler, rollout = raft
    assert isinstance(learner.algorithm, Raft) and learner.policy.prediction_type == "epsilon"
    batch = collate([_scored(rollout, np.zeros(8))], learner.device, learner.policy.schedule)
    rows, ks = np.array([0, 5, 6]), np.array([1, 3, 0])
    x0 = torch.from_numpy(rollout.latents[rows, -1])
    eps = torch.randn(x0.shape, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        got = learner.algorithm.loss(batch, rows, x0, eps, ks)
        sch = DDIMScheduler.from_config(sampler.pipe.scheduler.config)
        sch.set_timesteps(cfg.sampling.num_steps)
        t = sch.timesteps[ks]
        x_t = sch.add_noise(x0, eps, t)
        out = learner.unet(x_t, t, encoder_hidden_states=torch.from_numpy(rollout.prompt_embeds[rows])).sample
    np.testing.assert_allclose(got.numpy(), ((out - eps) ** 2).flatten(1).mean(1).numpy(), rtol=1e-5, atol=1e-6)


def test_an_update_fits_the_best_of_each_group_at_the_window_steps(raft):
    cfg, learner, _, rollout = raft
    before, rows0 = _weights(learner), learner.policy.forward_rows
    # group 0 (rows 0-3): row 1 is best; group 1 (rows 4-7) ties: nothing to rank
    stats = learner.update(0, [_scored(rollout, [0.1, 0.5, 0.2, 0.3, 0.4, 0.4, 0.4, 0.4])])
    assert stats.algorithm["raft/kept"] == 1 and stats.algorithm["raft/kept_reward"] == 0.5
    # 2 optimizer steps x 6 terms, each one conditional pass (no guidance) at step 1 or 2
    assert stats.trained_pairs == 12 and sum(stats.window_hist) == 12
    assert stats.window_hist[0] == 0 and stats.window_hist[3] == 0
    assert stats.learner_forward_rows == learner.policy.forward_rows - rows0 == 12
    assert np.isfinite(stats.loss) and not torch.equal(before, _weights(learner))


def test_a_batch_with_nothing_to_rank_trains_nothing(raft):
    _, learner, _, rollout = raft
    before = _weights(learner)
    fresh = dataclasses.replace(rollout, policy_version=learner.version)  # as if sampled with the new weights
    stats = learner.update(1, [_scored(fresh, np.full(8, 0.7))])
    assert stats.algorithm["raft/kept"] == 0 and stats.trained_pairs == 0 and sum(stats.window_hist) == 0
    assert torch.equal(before, _weights(learner))


def test_the_guided_fit_is_the_guided_prediction_and_costs_two_passes(raft):
    cfg, learner, sampler, rollout = raft
    algo = learner.algorithm
    conditional = algo.cfg
    algo.cfg = conditional.model_copy(update={"fit": "guided"})
    try:
        batch = collate([_scored(rollout, np.zeros(8))], learner.device, learner.policy.schedule)
        rows, ks = np.array([2, 7]), np.array([2, 0])
        x0 = torch.from_numpy(rollout.latents[rows, -1])
        eps = torch.randn(x0.shape, generator=torch.Generator().manual_seed(4))
        rows0 = learner.policy.forward_rows
        with torch.no_grad():
            got = algo.loss(batch, rows, x0, eps, ks)
            assert learner.policy.forward_rows - rows0 == 2 * len(rows)
            sch = DDIMScheduler.from_config(sampler.pipe.scheduler.config)
            sch.set_timesteps(cfg.sampling.num_steps)
            t = sch.timesteps[ks]
            x_t = sch.add_noise(x0, eps, t)
            c = learner.unet(x_t, t, encoder_hidden_states=torch.from_numpy(rollout.prompt_embeds[rows])).sample
            u = learner.unet(x_t, t, encoder_hidden_states=torch.from_numpy(rollout.negative_embeds).expand(2, -1, -1)).sample
        guided = u + cfg.sampling.guidance_scale * (c - u)
        np.testing.assert_allclose(got.numpy(), ((guided - eps) ** 2).flatten(1).mean(1).numpy(), rtol=1e-4, atol=1e-5)
    finally:
        algo.cfg = conditional

"""The gradient-based learners (learner.algorithm = sqdf | lasro) on the tiny model, no
Ray: the surrogate learns an order from ranks alone, SQDF's and LaSRO's updates move
the policy up a reward given in closed form, and resume through a checkpoint folder is
exact with the replay buffer and the surrogate in the state."""
import dataclasses

import numpy as np
import pytest
import torch

from adascope_ray.data import PromptSchedule
from adascope_ray.learner import Learner
from adascope_ray.learner.surrogate import LatentSurrogate
from adascope_ray.rewards import build_scorer
from adascope_ray.rollout import Sampler
from adascope_ray.runio import RunDir
from adascope_ray.types import PromptBatch, RewardResult, ScoredRollout

PROMPTS = ["a red circle", "a blue square"]


def _learner(cfg):
    return Learner(cfg.model, cfg.sampling, cfg.learner, cfg.window, cfg.advantage, cfg.rewards)


def _scored(cfg, sampler, it, reward=None):
    batch = PromptSchedule(cfg.data.prompts, 2, cfg.data.group_size, 0).batches(it, 1, sampler.version)[0]
    rollout = sampler.sample(batch)
    r = build_scorer("jpeg_compressibility")(rollout.images, rollout.prompts) if reward is None \
        else reward(torch.from_numpy(rollout.latents[:, -1])).numpy()
    return ScoredRollout(rollout, RewardResult(r, {"r": r}))


def channel_mean(x0: torch.Tensor) -> torch.Tensor:
    """A reward in closed form: the mean of a latent's first channel, (n,)."""
    return x0[:, 0].mean((1, 2))


def test_the_surrogate_learns_an_order_it_is_only_shown_ranks_of(make_cfg):
    cfg = make_cfg(learner={"algorithm": "sqdf", "surrogate": {"steps_per_update": 200, "groups_per_step": 8}})
    learner = _learner(cfg)
    critic = learner.algorithm.critic
    gen = torch.Generator().manual_seed(0)
    rollout = _scored(cfg, Sampler(cfg.model, cfg.sampling, cfg.sampler), 0).rollout
    emb, shape = torch.from_numpy(rollout.prompt_embeds[:1]), rollout.latents.shape[2:]

    def batch_of(n_groups, group=4):
        x = torch.randn(n_groups * group, *shape, generator=gen)
        x[:, 0] += torch.linspace(-1, 1, group).repeat(n_groups).view(-1, 1, 1) * torch.rand(len(x), 1, 1, generator=gen)
        return x, emb.expand(len(x), -1, -1), channel_mean(x).double().numpy(), np.repeat(np.arange(n_groups), group)

    x, e, r, g = batch_of(32)
    with torch.no_grad():
        feats = learner.reference_features(x, e)
    critic.replay.add(x[:, None].expand(-1, 2, -1, -1, -1), e, r, g, 0, feats, ["p"] * len(x))
    critic.surrogate = LatentSurrogate(cfg.learner.surrogate, feats.shape[1], e.shape[-1], learner.device, 0)
    x2, e2, r2, g2 = batch_of(16)
    with torch.no_grad():
        f2 = learner.reference_features(x2, e2)
    before = critic.surrogate.held_out(f2, e2, r2, g2)["surrogate/held_out_accuracy"]
    critic.fit(np.random.default_rng(0))
    after = critic.surrogate.held_out(f2, e2, r2, g2)["surrogate/held_out_accuracy"]
    # 96 held-out pairs: chance is 0.5; a head that learned the order ranks most of them
    assert after >= 0.8 and after > before + 0.2, (before, after)


@pytest.mark.parametrize("algorithm, steps", [("sqdf", 4), ("lasro", 2)])
def test_the_update_climbs_a_reward_given_in_closed_form(make_cfg, algorithm, steps):
    """With r(x̂0) replaced by a closed form (the first channel's mean), a few updates
    raise that quantity in the policy's own samples: the gradient flows the right way
    through the reparameterised step, the reference's x̂0 (sqdf) or the whole chain
    (lasro), into the LoRA."""
    cfg = make_cfg(sampling={"num_steps": steps, "guidance_scale": 3.0},
                   learner={"algorithm": algorithm, "lr": 3e-3, "surrogate": {"warmup_updates": 0},
                            algorithm: {"optimizer_steps": 4, "batch_size": 4, "alpha": 0.0}},
                   window={"strategy": "full"})
    learner, sampler = _learner(cfg), Sampler(cfg.model, cfg.sampling, cfg.sampler)
    learner.algorithm.critic.reward = lambda x0, embeds, prompts: channel_mean(x0)

    def sync():
        if learner.version > sampler.version:
            sampler.set_weights(learner.publish())

    def measured():
        sync()
        r = sampler.sample(PromptBatch(PROMPTS * 4, np.repeat(np.arange(4), 2), 123, sampler.version))
        return float(channel_mean(torch.from_numpy(r.latents[:, -1])).mean())

    base = measured()
    for it in range(6):
        sync()
        stats = learner.update(it, [_scored(cfg, sampler, it, channel_mean)])
    assert stats.trained_pairs > 0 and np.isfinite(stats.grad_norm)
    assert learner.policy.forward_rows > 0
    gain = measured() - base
    assert gain > 0.05, gain


def test_resume_through_a_checkpoint_is_exact_with_the_buffer_and_the_surrogate(make_cfg, tmp_path):
    cfg = make_cfg(learner={"algorithm": "sqdf", "surrogate": {"warmup_updates": 1, "steps_per_update": 5},
                            "sqdf": {"optimizer_steps": 2, "batch_size": 4},
                            "replay": {"sampling": "prioritised", "ratio": 0.5}})
    sampler = Sampler(cfg.model, cfg.sampling, cfg.sampler)
    # the same data for both learners, stamped with the version each update expects
    rollouts = [_scored(cfg, sampler, it) for it in range(3)]
    rollouts = [ScoredRollout(dataclasses.replace(s.rollout, policy_version=it), s.rewards) for it, s in enumerate(rollouts)]

    straight = _learner(cfg)
    ref = [straight.update(it, [rollouts[it]]) for it in range(3)]

    first = _learner(cfg)
    got = [first.update(it, [rollouts[it]]) for it in range(2)]
    run = RunDir.create(str(tmp_path), "r", overwrite=False)
    ckpt = run.save_checkpoint(2, first.export(), {"iteration": 2}, first.state())
    del first
    _, state = run.load_resume(ckpt)
    resumed = _learner(cfg)
    resumed.load_state(state)
    got.append(resumed.update(2, [rollouts[2]]))

    assert ref[2].algorithm["replay/size"] == 3 * len(rollouts[0].rollout.prompts)
    for a, b in zip(ref, got):  # bit-identical on CPU
        assert (a.loss, a.grad_norm, a.window_hist, a.algorithm) == (b.loss, b.grad_norm, b.window_hist, b.algorithm)
    want = {n: p for n, p in straight.unet.named_parameters() if p.requires_grad}
    have = {n: p for n, p in resumed.unet.named_parameters() if p.requires_grad}
    assert all(torch.equal(want[n], have[n]) for n in want)

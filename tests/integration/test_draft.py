"""learner.algorithm = draft on the tiny model, no Ray: its weight gradient is that of a
chain whose steps after the window run a frozen copy of the denoiser (a second
implementation of "train only in the window"), it differs from the gradient with every
step trained, and a few updates climb a reward given in closed form."""
import copy

import numpy as np
import pytest
import torch

from adascope_ray.data import PromptSchedule
from adascope_ray.learner import Learner
from adascope_ray.learner.draft import detached_policy
from adascope_ray.learner.learner import collate
from adascope_ray.rollout import Sampler
from adascope_ray.types import PromptBatch, RewardResult, ScoredRollout

PROMPTS = ["a red circle", "a blue square"]
SCENE = {"components": [{"name": "scene_check"}]}  # a reward with a differentiable form (rewards/scene_soft.py)


def channel_mean(x0: torch.Tensor) -> torch.Tensor:
    """A reward in closed form: the mean of a latent's first channel, (n,)."""
    return x0[:, 0].mean((1, 2))


def _learner(cfg):
    return Learner(cfg.model, cfg.sampling, cfg.learner, cfg.window, cfg.advantage, cfg.rewards)


def _scored(cfg, sampler, it):
    rollout = sampler.sample(PromptSchedule(cfg.data.prompts, 2, cfg.data.group_size, 0).batches(it, 1, sampler.version)[0])
    r = channel_mean(torch.from_numpy(rollout.latents[:, -1])).double().numpy()
    return ScoredRollout(rollout, RewardResult(r, {"r": r}))


def _grads(learner):
    return torch.cat([(p.grad if p.grad is not None else torch.zeros_like(p)).flatten() for p in learner.params])


@pytest.fixture(scope="module")
def setup(make_cfg):
    cfg = make_cfg(sampling={"num_steps": 4, "guidance_scale": 3.0}, rewards=SCENE,
                   learner={"algorithm": "draft", "lr": 1e-2, "torch_threads": 1})
    learner, sampler = _learner(cfg), Sampler(cfg.model, cfg.sampling, cfg.sampler)
    with torch.no_grad():  # non-zero LoRA B, so that the adapters' weights shape the chain's output
        for p in learner.params:
            p.add_(0.05 * torch.randn(p.shape, generator=torch.Generator().manual_seed(p.numel())))
    sampler.set_weights(learner.publish())
    learner.algorithm.critic.reward = lambda x0, embeds, prompts: channel_mean(x0)
    return cfg, learner, sampler, collate([_scored(cfg, sampler, 0)], learner.device, learner.policy.schedule)


def _manual_chain_grad(learner, batch, rows, k_s, k_e, seed, frozen_after: bool):
    """The weight gradient of −mean r(x_K) from x_{k_s}, written out step by step with the
    policy's own step and a deep copy of the denoiser (no trainable weights) after k_e."""
    frozen = copy.copy(learner.policy)
    if frozen_after:
        frozen.unet = copy.deepcopy(learner.unet).requires_grad_(False)
    learner.optimizer.zero_grad(set_to_none=True)
    i = torch.from_numpy(rows)
    gen = torch.Generator().manual_seed(seed)
    x = batch.latent(i, torch.full((len(rows),), k_s))
    neg = batch.negative.expand(len(rows), -1, -1)
    for k in range(k_s, batch.log_probs.shape[1]):
        pol = learner.policy if k < k_e else frozen
        x = pol.step(x, torch.full((len(rows),), k), batch.embeds[i], neg, generator=gen).prev_sample
    (-channel_mean(x).mean()).backward()
    return _grads(learner)


def test_the_weights_train_only_inside_the_window(setup):
    cfg, learner, _, batch = setup
    rows, (k_s, k_e) = np.array([0, 1, 3]), (1, 3)                          # window [1, 3) of 4 steps
    # the algorithm's loss, with its noise drawn from a generator seeded as the reference's
    learner.generator = torch.Generator().manual_seed(7)
    learner.optimizer.zero_grad(set_to_none=True)
    loss, r, _ = learner.algorithm.loss(batch, rows, tuple(range(k_s, k_e)), 4, detached_policy(learner.policy, learner.unet))
    loss.backward()
    got = _grads(learner)
    want = _manual_chain_grad(learner, batch, rows, k_s, k_e, 7, frozen_after=True)
    every_step = _manual_chain_grad(learner, batch, rows, k_s, k_e, 7, frozen_after=False)
    assert got.abs().max() > 0
    torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-7)
    # training the steps after the window too gives another gradient: the restriction is real
    assert (every_step - want).abs().max() > 1e-3 * want.abs().max()
    learner.optimizer.zero_grad(set_to_none=True)


def test_the_detached_denoiser_keeps_the_input_gradient(setup):
    _, learner, _, batch = setup
    frozen = detached_policy(learner.policy, learner.unet)
    x = batch.latent(torch.tensor([0, 1]), torch.tensor([1, 1])).clone().requires_grad_(True)
    steps, neg = torch.tensor([1, 1]), batch.negative.expand(2, -1, -1)
    a = learner.policy.step(x, steps, batch.embeds[:2], neg, prev_sample=x.detach()).mean
    b = frozen.step(x, steps, batch.embeds[:2], neg, prev_sample=x.detach()).mean
    torch.testing.assert_close(a, b)                                         # the same function
    (ga,) = torch.autograd.grad(a.sum(), x, retain_graph=True)
    learner.optimizer.zero_grad(set_to_none=True)
    b.sum().backward()
    torch.testing.assert_close(x.grad, ga)                                    # the same input gradient
    assert all(p.grad is None for p in learner.params)                        # and none to the weights
    assert frozen.forward_rows == 4                                           # 2 rows × guidance, counted on its own


def test_updates_climb_a_reward_given_in_closed_form(make_cfg):
    """With r(decode(x_K)) replaced by the first latent channel's mean, a few updates
    raise it in the policy's own samples: the gradient flows back through the chain
    from the window's start into the LoRA."""
    cfg = make_cfg(sampling={"num_steps": 2, "guidance_scale": 3.0}, rewards=SCENE, window={"strategy": "full"},
                   learner={"algorithm": "draft", "lr": 3e-3, "torch_threads": 1, "draft": {"optimizer_steps": 4, "batch_size": 4}})
    learner, sampler = _learner(cfg), Sampler(cfg.model, cfg.sampling, cfg.sampler)
    learner.algorithm.critic.reward = lambda x0, embeds, prompts: channel_mean(x0)

    def measured():
        if learner.version > sampler.version:
            sampler.set_weights(learner.publish())
        r = sampler.sample(PromptBatch(PROMPTS * 4, np.repeat(np.arange(4), 2), 123, sampler.version))
        return float(channel_mean(torch.from_numpy(r.latents[:, -1])).mean())

    base, rows0 = measured(), learner.policy.forward_rows
    for it in range(6):
        if learner.version > sampler.version:
            sampler.set_weights(learner.publish())
        stats = learner.update(it, [_scored(cfg, sampler, it)])
    # every chain runs both steps with guidance: 4 optimizer steps × 4 chains × 2 steps × 2 rows
    assert stats.learner_forward_rows == 64 and stats.trained_pairs == 32 and np.isfinite(stats.grad_norm)
    assert learner.policy.forward_rows - rows0 == 6 * 64
    gain = measured() - base
    assert gain > 0.05, gain


def test_chains_group_rows_by_the_steps_they_train():
    from adascope_ray.learner.draft import chain_groups

    mask = np.array([[1, 1, 0, 0], [0, 1, 1, 0], [1, 1, 0, 0], [0, 0, 0, 0], [0, 1, 0, 1]], bool)
    groups = chain_groups(mask, np.array([0, 1, 2, 3, 4, 0]))
    # row 3 selects nothing; row 4 (a fraction-style mask) trains steps 1 and 3, not 2;
    # a repeated row stays repeated
    assert {k: v.tolist() for k, v in groups.items()} == {(0, 1): [0, 2, 0], (1, 2): [1], (1, 3): [4]}

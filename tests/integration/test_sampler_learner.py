"""One sampler and one learner in one process on the tiny model (no Ray)."""
import numpy as np
import pytest
import torch

from adascope_ray.core.cost import learner_passes, sampler_passes
from adascope_ray.data import PromptSchedule
from adascope_ray.learner import Learner, collate
from adascope_ray.rewards import build_scorer
from adascope_ray.rollout import Sampler
from adascope_ray.types import RewardResult, ScoredRollout


def build(cfg):
    learner = Learner(cfg.model, cfg.sampling, cfg.learner, cfg.window, cfg.advantage)
    sampler = Sampler(cfg.model, cfg.sampling, cfg.sampler, pool=cfg.window.pool)
    sampler.set_weights(learner.publish())
    return sampler, learner


def scored_rollout(cfg, sampler, iteration=0):
    batch = PromptSchedule(cfg.data.prompts, cfg.data.prompts_per_iteration, cfg.data.group_size, 0)
    rollout = sampler.sample(batch.batches(iteration, 1, sampler.version)[0])
    r = build_scorer("jpeg_incompressibility")(rollout.images, rollout.prompts)
    return ScoredRollout(rollout, RewardResult(r, {"jpeg_incompressibility": r}))


@pytest.fixture(scope="module")
def pair(tiny_cfg):
    return build(tiny_cfg)


def test_rollout_shapes_and_counted_cost(tiny_cfg, pair):
    sampler, _ = pair
    s = scored_rollout(tiny_cfg, sampler)
    r, b, k = s.rollout, 4, tiny_cfg.sampling.num_steps
    assert r.latents.shape == (b, k + 1, 4, 16, 16) and r.log_probs.shape == (b, k)
    assert r.images.shape == (b, 32, 32, 3) and r.images.dtype == np.uint8
    assert np.isfinite(r.log_probs).all() and r.signals.structural.shape == (b, k)
    assert r.sampler_forward_rows == sampler_passes(b, k, cfg=True)  # CFG doubles every row
    assert r.prompts == [r.prompts[0]] * 2 + [r.prompts[2]] * 2 and r.group_ids.tolist() == [0, 0, 1, 1]


@pytest.mark.parametrize("micro", [1, 3, 16])
def test_learner_recomputes_the_samplers_log_probs(tiny_cfg, pair, micro):
    sampler, learner = pair
    s = scored_rollout(tiny_cfg, sampler)
    batch = collate([s], learner.device, learner.policy.schedule)
    pairs = np.argwhere(np.ones(batch.log_probs.shape, bool))
    with torch.no_grad():
        got = torch.cat([learner.log_probs(batch, mb) for mb in np.array_split(pairs, -(-len(pairs) // micro))])
    want = batch.log_probs[pairs[:, 0], pairs[:, 1]]
    torch.testing.assert_close(got, want, rtol=0, atol=1e-4)
    ratio = torch.exp(got - want)
    assert torch.allclose(ratio, torch.ones_like(ratio), atol=1e-4)


def test_update_trains_only_the_selected_steps(make_cfg):
    # a sliding window fixed at steps [1, 3): only those timesteps may see gradient
    cfg = make_cfg(window={"strategy": "sliding", "sliding": {"size": 2, "start": 1, "every": 100}})
    sampler, learner = build(cfg)
    s = scored_rollout(cfg, sampler)
    seen = []
    hook = learner.unet.register_forward_pre_hook(
        lambda mod, args: seen.append((torch.is_grad_enabled(), args[1].tolist())))
    lora = {n: p.detach().clone() for n, p in learner.unet.named_parameters() if "lora" in n}
    base = {n: p.detach().clone() for n, p in learner.unet.named_parameters() if "lora" not in n}
    stats = learner.update(0, [s])
    hook.remove()

    ts = s.rollout.timesteps
    grad_timesteps = {t for grad, tt in seen if grad for t in tt}
    assert grad_timesteps == {int(ts[1]), int(ts[2])}
    assert stats.window_hist == [0, 4, 4, 0] and stats.trained_pairs == 8
    assert stats.learner_forward_rows == 2 * 8  # CFG: two rows per trained pair
    assert learner_passes(stats.trained_pairs, cfg=True) == 3 * stats.learner_forward_rows
    changed = [n for n, p in learner.unet.named_parameters() if "lora" in n and not torch.equal(p, lora[n])]
    assert len(changed) > 0
    assert all(torch.equal(p, base[n]) for n, p in learner.unet.named_parameters() if "lora" not in n)
    assert stats.policy_version == 1


def test_publish_reaches_the_sampler(make_cfg):
    cfg = make_cfg(window={"strategy": "full"})
    sampler, learner = build(cfg)
    learner.update(0, [scored_rollout(cfg, sampler)])
    update = learner.publish()
    assert sampler.set_weights(update) == 1
    with pytest.raises(ValueError, match="refusing v1"):  # each version is loaded once
        sampler.set_weights(update)
    x = torch.randn(1, 4, 16, 16)
    emb = torch.randn(1, 77, 32)
    with torch.no_grad():
        a = sampler.pipe.unet(x, 500, encoder_hidden_states=emb).sample
        learner.unet.eval()
        b = learner.unet(x, 500, encoder_hidden_states=emb).sample
    torch.testing.assert_close(a, b)
    with pytest.raises(RuntimeError, match="v1"):  # a batch for another version is refused
        sampler.sample(PromptSchedule(["x"], 1, 2, 0).batches(0, 1, policy_version=0)[0])


def test_update_raises_log_prob_of_high_advantage_trajectories(make_cfg):
    """Policy improvement: after one small step, the change in a trajectory's
    log-likelihood has the sign of its advantage (first-order behaviour of the
    policy gradient), checked on trajectories whose advantages we know."""
    cfg = make_cfg(window={"strategy": "full"}, data={"group_size": 4},
                   learner={"lr": 1e-3, "clip_range": 0.5, "max_grad_norm": 1e9})
    sampler, learner = build(cfg)
    s = scored_rollout(cfg, sampler)
    batch = collate([s], learner.device, learner.policy.schedule)
    adv = learner.advantages(batch).values
    pairs = np.argwhere(np.ones(batch.log_probs.shape, bool))
    with torch.no_grad():
        before = learner.log_probs(batch, pairs).reshape(batch.log_probs.shape).sum(1)
    learner.update(0, [s])
    with torch.no_grad():
        after = learner.log_probs(batch, pairs).reshape(batch.log_probs.shape).sum(1)
    delta = (after - before).numpy()
    assert np.corrcoef(adv, delta)[0, 1] > 0.8
    big = np.abs(adv) > 0.5
    assert (np.sign(delta[big]) == np.sign(adv[big])).all()


def test_non_finite_samples_are_dropped_and_counted(make_cfg):
    cfg = make_cfg(window={"strategy": "full"}, data={"group_size": 4})
    sampler, learner = build(cfg)
    s = scored_rollout(cfg, sampler)                   # 2 prompts x 4 samples, groups 0 = rows 0..3
    s.rewards.total[0] = np.nan                        # a reward model's NaN
    s.rollout.log_probs[5, 1] = np.inf                 # a sampler's overflow
    batch = collate([s], learner.device, learner.policy.schedule)
    from adascope_ray.learner.learner import finite_samples

    keep = finite_samples(batch)
    assert keep.tolist() == [False, True, True, True, True, False, True, True]
    adv = learner.advantages(batch, keep=keep)
    # group 0 from its three finite rewards only: (r - mean) / (population std + 1e-4)
    r = s.rewards.total[1:4].astype(np.float64)
    np.testing.assert_allclose(adv.values[1:4], (r - r.mean()) / (r.std() + 1e-4), rtol=1e-5)
    assert not adv.valid[0] and not adv.valid[5] and adv.values[0] == 0

    before = {n: p.detach().clone() for n, p in learner.unet.named_parameters() if p.requires_grad}
    stats = learner.update(0, [s])
    k = cfg.sampling.num_steps
    assert stats.dropped_nonfinite == 2 and stats.trained_pairs == 6 * k and stats.skipped_steps == 0
    assert np.isfinite(stats.reward_mean) and stats.reward_mean == pytest.approx(np.delete(s.rewards.total, [0, 5]).mean(), rel=1e-6)
    after = dict(learner.unet.named_parameters())
    assert all(torch.isfinite(after[n]).all() for n in before) and any(not torch.equal(after[n], before[n]) for n in before)


def test_non_finite_gradient_skips_the_optimizer_step(make_cfg):
    cfg = make_cfg(window={"strategy": "full"}, learner={"optimizer_steps_per_epoch": 2})
    sampler, learner = build(cfg)
    batch = collate([scored_rollout(cfg, sampler)], learner.device, learner.policy.schedule)
    before = {n: p.detach().clone() for n, p in learner.unet.named_parameters() if p.requires_grad}
    mask = np.ones(batch.log_probs.shape, bool)
    adv = torch.full((batch.log_probs.shape[0],), float("nan"))  # poisons every loss and gradient
    _, _, grad_norm, skipped, _ = learner.train_on(batch, [mask], adv)
    assert skipped == 2 and np.isnan(grad_norm)
    after = dict(learner.unet.named_parameters())
    assert all(torch.equal(after[n], before[n]) for n in before)  # weights untouched


def test_fraction_draws_a_new_subset_of_steps_every_pass(make_cfg):
    """DDPO's timestep_fraction: each inner epoch trains on its own random subset of
    floor(f K) steps per sample (here 1 of 4), not one subset reused by every pass."""
    cfg = make_cfg(window={"strategy": "fraction", "fraction": {"fraction": 0.25}}, data={"group_size": 4},
                   learner={"inner_epochs": 4, "micro_batch_size": 64})
    sampler, learner = build(cfg)
    s = scored_rollout(cfg, sampler)
    passes, recompute = [], learner.step_outputs  # the update's recomputation of each micro-batch
    learner.step_outputs = lambda batch, pairs, policy=None: passes.append(pairs.copy()) or recompute(batch, pairs, policy)
    stats = learner.update(0, [s])
    b = s.rollout.batch_size
    assert len(passes) == 4 and all(len(p) == b for p in passes)           # one micro-batch per pass
    assert all(sorted(p[:, 0].tolist()) == list(range(b)) for p in passes)  # one step per sample per pass
    distinct = {tuple(x) for p in passes for x in p.tolist()}
    assert len(distinct) > b  # P(every sample drew the same step in all 4 passes) = 4**-(3 b)
    assert stats.trained_pairs == b and sum(stats.window_hist) == b


def test_a_non_finite_latent_drops_its_sample_not_its_group_window(make_cfg):
    """A NaN in one sample's latents (and so in its signals and final-latent variance):
    the sample is dropped and counted; its group's window and the prior come from the
    finite samples, and the update still trains the rest."""
    cfg = make_cfg(window={"strategy": "adascope", "adascope": {"use_prior": True, "tau_s": -1.0, "w_min": 2}},
                   data={"group_size": 3})
    sampler, learner = build(cfg)
    s = scored_rollout(cfg, sampler)                   # 2 prompts x 3 samples: rows 0-2, 3-5
    r = s.rollout
    r.latents[1, 2] = np.nan                           # a sampler's NaN latent mid-trajectory
    r.signals.structural[1, 2:] = np.nan               # the signals computed from it
    r.signals.semantic[1, 2:] = np.nan
    r.signals.convergence[1, 2:] = np.nan
    r.signals.var_pooled[1] = np.nan
    r.signals.var_full[1] = np.nan
    batch = collate([s], learner.device, learner.policy.schedule)
    from adascope_ray.learner.learner import finite_samples

    keep = finite_samples(batch)
    assert keep.tolist() == [True, False, True, True, True, True]
    window, k_lo, k_hi = learner.window(0, batch, keep=keep)
    # tau_s = -1: S_k >= tau_s from k = 0, so each group opens at max(k_lo, 0) = k_lo; the
    # prior from the finite samples' variances alone (a NaN variance would give K, K)
    from adascope_ray.core.signals import prior_bounds

    ok = np.flatnonzero(keep)
    want = prior_bounds(batch.alpha_bars, float(r.signals.var_pooled[ok].mean()),
                        float(r.signals.var_full[ok].mean()), cfg.window.pool, cfg.window.prior_lo, cfg.window.prior_hi)
    k = cfg.sampling.num_steps
    assert (k_lo, k_hi) == want and k_lo < k
    assert window.mask[1].sum() == 0                           # the bad sample trains on nothing
    assert window.mask[[0, 2]].any(1).all()                    # its group still has a window
    assert (window.mask[0] == window.mask[2]).all()            # shared by the group
    stats = learner.update(0, [s])
    assert stats.dropped_nonfinite == 1 and stats.trained_pairs > 0 and np.isfinite(stats.loss)

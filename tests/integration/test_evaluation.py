"""The evaluation protocol on the tiny model (no Ray): the same prompts and seeds give
the same samples (so two policies are paired sample for sample), other seeds other
noise, and the paired gain is the mean of per-sample differences with its ddof=1 SE."""
import numpy as np
import pytest

from adascope_ray.evaluation import Evaluation, eval_batches, evaluate_sampler
from adascope_ray.rewards.combine import CombinedReward

from .test_sampler_learner import build, scored_rollout


def test_evaluations_are_reproducible_and_paired(make_cfg):
    cfg = make_cfg(window={"strategy": "full"}, learner={"lr": 3e-2, "clip_range": 0.5})
    sampler, learner = build(cfg)
    score = CombinedReward(cfg.rewards.components)  # jpeg_compressibility, the config default
    prompts, seeds = ["a red circle", "a blue square", "a green tree"], [0, 1]
    a, images_a = evaluate_sampler(sampler, score, prompts, seeds)
    again, images_again = evaluate_sampler(sampler, score, prompts, seeds)
    assert a.total.shape == (2, 3) and all(np.array_equal(x, y) for x, y in zip(images_a, images_again))
    np.testing.assert_array_equal(a.total, again.total)
    assert not np.array_equal(images_a[0], images_a[1])  # another seed, other noise
    assert a.sampler_forward_rows == 2 * 3 * cfg.sampling.num_steps * 2  # seeds x prompts x K x CFG

    learner.update(0, [scored_rollout(cfg, sampler)])
    sampler.set_weights(learner.publish())
    b, _ = evaluate_sampler(sampler, score, prompts, seeds)
    assert b.version == 1 and not np.array_equal(a.total, b.total)
    d = (b.total - a.total).ravel()
    gain = b.against(a)["reward"]
    assert gain.n == 6 and gain.mean == pytest.approx(d.mean()) and gain.se == pytest.approx(d.std(ddof=1) / np.sqrt(6))
    assert Evaluation.from_json(b.to_json()).against(a)["reward"].mean == pytest.approx(gain.mean)
    with pytest.raises(ValueError, match="same prompts and noise seeds"):
        b.against(evaluate_sampler(sampler, score, prompts, [0, 2])[0])


def test_evaluation_batches_keep_the_prompt_order_for_every_seed():
    bs = eval_batches(["x", "y"], [0, 5], policy_version=3)
    assert [b.prompts for b in bs] == [["x", "y"]] * 2 and [b.policy_version for b in bs] == [3, 3]
    assert bs[1].seed - bs[0].seed == 5 and [b.group_ids.tolist() for b in bs] == [[0, 1]] * 2


def test_the_evaluation_noise_does_not_depend_on_the_training_noise_setting(make_cfg):
    """sampling.initial_noise = per_group shares x_T within a training group; an
    evaluation still draws each (caption, seed) its own x_T, so checkpoints of configs
    that differ in it pair sample for sample."""
    from adascope_ray.rollout import Sampler
    from adascope_ray.types import PromptBatch

    prompts, seeds = ["a red circle", "a red circle", "a blue square"], [0, 1]
    got = {}
    for noise in ("per_sample", "per_group"):
        cfg = make_cfg(sampling={"initial_noise": noise})
        sampler = Sampler(cfg.model, cfg.sampling, cfg.sampler)
        got[noise] = evaluate_sampler(sampler, CombinedReward(cfg.rewards.components), prompts, seeds)[1]
        # a training batch of the same config: one group of two rows shares its x_T only under per_group
        train = sampler.sample(PromptBatch(prompts[:2], np.array([0, 0]), 5, sampler.version)).latents[:, 0]
        assert np.array_equal(train[0], train[1]) == (noise == "per_group")
    assert all(np.array_equal(a, b) for a, b in zip(got["per_sample"], got["per_group"]))
    assert not np.array_equal(got["per_sample"][0][0], got["per_sample"][0][1])  # the repeated caption: its own noise

"""A rollout one version older than the learner's weights (learner.max_staleness ≥ 1):
the decoupled form clips around the learner's own recomputed log-probs, so the first
optimizer step clips nothing where the plain form clips most pairs; its importance
weights are π_prox / π_behaviour of the trained pairs, and its recomputation is
counted in the learner's cost."""
import numpy as np
import pytest
import torch

from adascope_ray.learner import collate

from .conftest import pair_and_rollout


def _stale_update(make_cfg, correction):
    """Update once on a fresh rollout (v0 -> v1), then on the same rollout again, now
    one version old. Returns (the second update's stats, the learner's log-probs at v1
    and the stored v0 ones of every pair, the learner's rows per recomputed pair)."""
    cfg = make_cfg(window={"strategy": "full"},
                   learner={"max_staleness": 1, "inner_epochs": 1, "optimizer_steps_per_epoch": 1,
                            "clip_range": 1e-4, "lr": 1e-2, "off_policy": {"correction": correction, "is_cap": 1.5}})
    learner, _, scored = pair_and_rollout(cfg)
    first = learner.update(0, [scored])
    assert first.off_policy == {"staleness_mean": 0.0}  # fresh: the plain loss, no weights
    batch = collate([scored], learner.device, learner.policy.schedule)
    pairs = np.argwhere(np.ones(batch.log_probs.shape, bool))
    rows0 = learner.policy.forward_rows
    with torch.no_grad():
        at_v1 = learner.log_probs(batch, pairs[:1])
        rows_per_pair = learner.policy.forward_rows - rows0
        at_v1 = learner.log_probs(batch, pairs).reshape(batch.log_probs.shape)
    return learner.update(1, [scored]), at_v1, batch.log_probs, rows_per_pair


def test_decoupled_form_clips_around_the_learners_weights_and_weights_by_the_ratio(make_cfg):
    stale, at_v1, stored, rows_per_pair = _stale_update(make_cfg, "decoupled")
    plain, _, _, _ = _stale_update(make_cfg, "none")
    assert stale.dropped_stale == 0 and stale.off_policy["staleness_mean"] == 1.0
    # the update moved the policy: one version apart, most pairs' ratio to v0 leaves 1 ± ε
    assert plain.clipfrac > 0.5, plain.clipfrac
    # decoupled: before the only optimizer step the ratio to π_prox (= v1) is 1
    assert stale.clipfrac == 0.0
    # the weights of the trained pairs: min(π_v1 / π_v0, 1.5), from the log-probs computed here
    assert stale.trained_pairs == stored.numel()  # full window, both groups' rewards spread: every pair
    w = torch.exp(at_v1 - stored).clamp(max=1.5)
    assert stale.off_policy["is_weight_mean"] == pytest.approx(float(w.mean()), rel=1e-4)
    assert stale.off_policy["is_weight_max"] == pytest.approx(float(w.max()), rel=1e-4)
    assert stale.off_policy["is_capped"] == pytest.approx(float((torch.exp(at_v1 - stored) > 1.5).float().mean()))
    # π_prox costs one more no-grad pass per trained pair, counted as learner rows
    assert stale.learner_forward_rows - plain.learner_forward_rows == stale.trained_pairs * rows_per_pair

"""The KL term to the reference (learner.kl.beta): its reference is the model before
training (checked against a second, untrained learner), its value is the Gaussians'
KL computed by hand from the two means, it pulls the weights back toward the reference,
and its reference passes are counted in the learner's cost."""
import numpy as np
import pytest
import torch

from adascope_ray.learner import Learner, collate

from .conftest import pair_and_rollout


def _perturb(learner, scale=0.05, seed=0):
    """Move the trained weights away from the reference (LoRA B starts at zero)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in learner.params:
            p.add_(scale * torch.randn(p.shape, generator=g))


@pytest.mark.parametrize("trainable", ["lora", "full"])
def test_reference_is_the_untrained_model_and_kl_matches_the_hand_formula(make_cfg, trainable):
    cfg = make_cfg(model={"trainable": trainable}, learner={"kl": {"beta": 1.0}})
    learner, _, scored = pair_and_rollout(cfg)
    untrained = Learner(cfg.model, cfg.sampling, cfg.learner.model_copy(update={"kl": cfg.learner.kl.model_copy(update={"beta": 0.0})}),
                        cfg.window, cfg.advantage)
    batch = collate([scored], learner.device, learner.policy.schedule)
    pairs = np.argwhere(np.ones(batch.log_probs.shape, bool))
    _perturb(learner)
    with torch.no_grad():
        ref = learner.reference_means(batch, pairs)
        hand_ref = untrained.step_outputs(batch, pairs).mean
        out = learner.step_outputs(batch, pairs)
    torch.testing.assert_close(ref, hand_ref, rtol=1e-5, atol=1e-6)
    # KL(N(μ, σ²) ‖ N(μ_ref, σ²)) per dimension = (μ − μ_ref)² / 2σ², by hand in float64
    mu, mu_ref, sd = out.mean.double(), hand_ref.double(), out.std.double()
    hand_kl = (((mu - mu_ref) ** 2) / (2 * sd**2)).flatten(1).mean(1)
    from adascope_ray.core.loss import kl_to_reference

    torch.testing.assert_close(kl_to_reference(out.mean, ref, out.std).double(), hand_kl, rtol=1e-4, atol=1e-9)
    assert float(hand_kl.min()) > 0  # the perturbation moved every step's mean


def test_kl_term_alone_pulls_the_weights_back_and_its_passes_are_counted(make_cfg):
    cfg = make_cfg(learner={"kl": {"beta": 1.0}, "lr": 1e-2, "optimizer_steps_per_epoch": 4})
    learner, _, scored = pair_and_rollout(cfg)
    batch = collate([scored], learner.device, learner.policy.schedule)
    mask = np.ones(batch.log_probs.shape, bool)
    pairs = np.argwhere(mask)
    _perturb(learner)

    def kl_now():
        with torch.no_grad():
            out = learner.step_outputs(batch, pairs)
            return float(((out.mean - learner.reference_means(batch, pairs)) ** 2 / (2 * out.std**2)).mean())

    before = kl_now()
    rows0 = learner.policy.forward_rows
    zero_adv = torch.zeros(len(batch.rewards))  # the policy-gradient part has no gradient
    _, stats, _, _, _ = learner.train_on(batch, [mask], zero_adv)
    rows = learner.policy.forward_rows - rows0
    after = kl_now()
    assert stats["kl_ref"] > 0
    assert after < 0.5 * before, (before, after)
    # every trained pair ran the policy and the reference, both with CFG (2 rows each)
    assert rows == 2 * 2 * len(pairs)


@pytest.mark.parametrize("trainable", ["lora", "full"])
def test_update_reports_kl_and_counts_reference_passes_against_beta_zero(make_cfg, trainable):
    rows = {}
    for beta in (0.0, 0.5):
        cfg = make_cfg(model={"trainable": trainable}, learner={"kl": {"beta": beta}})
        learner, _, scored = pair_and_rollout(cfg)
        st = learner.update(0, [scored])
        rows[beta] = st.learner_forward_rows
        assert ("kl_ref" in st.loss_terms) == (beta > 0)
        assert st.trained_pairs > 0
    assert rows[0.5] == 2 * rows[0.0]

"""LaSRO's generator objective against a hand computation."""
import pytest
import torch

from adascope_ray.core.lasro import lasro_loss


def test_loss_value_and_gradient_by_hand():
    # a two-step chain of one sample with D = 1: μ_θ at step 0 is θ, at step 1 is 2θ;
    # the reference's means 0 and 1; σ 1 and 0.5; s(x_K) = 3θ
    theta = torch.tensor([0.5], requires_grad=True)
    mus = [theta.view(1, 1, 1, 1), (2 * theta).view(1, 1, 1, 1)]
    refs = [torch.zeros(1, 1, 1, 1), torch.ones(1, 1, 1, 1)]
    sigmas = [torch.tensor([1.0]), torch.tensor([0.5])]
    loss, parts = lasro_loss(3 * theta, mus, refs, sigmas, alpha=0.1)
    # KL = θ² / 1 + (2θ − 1)² / 0.25 = 0.25 + 0 = 0.25; L = −(1.5 − 0.025) = −1.475
    assert parts["kl"] == pytest.approx(0.25) and float(loss) == pytest.approx(-1.475)
    loss.backward()
    # ∂L/∂θ = −3 + 0.1 (2θ + 2 (2θ − 1) · 2 / 0.25) = −3 + 0.1 · 1 = −2.9
    assert theta.grad.item() == pytest.approx(-2.9)


def test_a_chain_without_kl_steps_has_kl_zero():
    # draft with alpha = 0 passes no steps: L = −mean r, KL 0
    r = torch.tensor([0.2, 0.6], requires_grad=True)
    loss, parts = lasro_loss(r, [], [], [], alpha=0.0)
    assert float(loss) == pytest.approx(-0.4) and parts["kl"] == 0.0

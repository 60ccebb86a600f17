"""SQDF's objective against hand computations."""
import pytest
import torch

from adascope_ray.core.sqdf import discount, mean_kl, sqdf_loss


def test_discount_is_gamma_to_the_steps_still_to_come():
    # K = 4: steps 0..3 have 3, 2, 1, 0 steps after them
    assert discount(0.5, torch.tensor([0, 1, 2, 3]), 4).tolist() == [0.125, 0.25, 0.5, 1.0]
    assert discount(1.0, torch.tensor([0, 3]), 4).tolist() == [1.0, 1.0]


def test_kl_is_the_mean_squared_mean_gap_over_sigma_squared():
    mu_ref = torch.zeros(2, 1, 1, 2)
    mu = torch.tensor([[[[1.0, 3.0]]], [[[0.0, 2.0]]]])   # gaps² : (1 + 9) / 2 = 5; (0 + 4) / 2 = 2
    got = mean_kl(mu, mu_ref, torch.tensor([1.0, 2.0]))    # / σ²: 5 / 1, 2 / 4
    assert got.tolist() == [5.0, 0.5]
    with pytest.raises(ValueError, match="σ_k must be > 0"):
        mean_kl(mu, mu_ref, torch.tensor([1.0, 0.0]))


def test_loss_value_and_gradient_by_hand():
    # one sample, K = 3, step k = 1: discount γ^{3−1−1} = γ = 0.5; D = 2 latent entries
    theta = torch.tensor([1.0, -1.0], requires_grad=True)
    mu = theta.view(1, 1, 1, 2)                            # μ_θ = θ
    mu_ref = torch.zeros(1, 1, 1, 2)
    reward = (2.0 * theta[0]).view(1)                      # r = 2 θ_0 (a differentiable reward of θ)
    loss, parts = sqdf_loss(reward, mu, mu_ref, torch.tensor([0.5]), torch.tensor([1]), 3, gamma=0.5, alpha=0.1)
    # Q = 0.5 · 2 = 1; KL = ((1 + 1) / 2) / 0.25 = 4; L = −(1 − 0.1 · 4) = −0.6
    assert float(loss) == pytest.approx(-0.6) and parts["q"] == pytest.approx(1.0) and parts["kl"] == pytest.approx(4.0)
    loss.backward()
    # ∂L/∂θ_0 = −(0.5 · 2 − 0.1 · 2 θ_0 / (D σ²)) = −(1 − 0.1 · 2 / 0.5) = −0.6
    # ∂L/∂θ_1 = 0.1 · 2 θ_1 / (D σ²) = 0.1 · (−2) / 0.5 = −0.4
    assert theta.grad.tolist() == pytest.approx([-0.6, -0.4])


def test_the_reference_mean_carries_no_gradient():
    mu_ref = torch.ones(1, 1, 1, 1, requires_grad=True)
    mu = torch.zeros(1, 1, 1, 1, requires_grad=True)
    loss, _ = sqdf_loss(torch.zeros(1, requires_grad=True), mu, mu_ref, torch.tensor([1.0]), torch.tensor([0]), 2, 0.9, 1.0)
    loss.backward()
    assert mu_ref.grad is None and float(mu.grad) == pytest.approx(-2.0)  # ∂(α (μ_ref − μ)²)/∂μ = −2

"""SQDF's objective (Soft Q-based Diffusion Finetuning, arXiv 2512.04559) as pure
torch math: the reparameterised policy gradient of a training-free, differentiable
estimate of the soft Q-function (no ray, no diffusers).

Notation (this project's, as in core/sde.py): K denoising steps, step index k
(0 = noisiest); the action at step k takes x_k to x_{k+1} ~ N(μ_θ(x_k, k), σ_k² I).

    1. x_{k+1} = μ_θ(x_k, k) + σ_k ε          one gradient-carrying step (ε fixed: reparameterised)
    2. x̂0    = f(x_{k+1})                      a one-step prediction of the clean sample (a
                                               consistency model when given, else the frozen
                                               reference denoiser's Tweedie estimate)
    3. Q̂_k   = γ^{K−k−1} · r(decode(x̂0))      the soft Q estimate: the differentiable reward,
                                               discounted by the steps still to come
    4. KL_k  = mean_d (μ_ref,d − μ_θ,d)² / σ_k²   per sample, mean over the latent's D entries
    5. L     = −mean_b (Q̂_k − α KL_k)          minimised; ∂L/∂θ flows through μ_θ in 1 and 4

γ = 1 is no discount; α = 0 drops the KL regulariser. The gradient of L in θ is the
reparameterised policy gradient of the KL-regularised objective at step k.
"""
from __future__ import annotations

import torch


def discount(gamma: float, k: torch.Tensor, num_steps: int) -> torch.Tensor:
    """γ^{K−k−1} for step indices k (B,)."""
    return torch.as_tensor(gamma, dtype=torch.float64) ** (num_steps - 1 - k.to(torch.float64))


def mean_kl(mu_theta: torch.Tensor, mu_ref: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """KL_k per sample: mean over the latent entries of (μ_ref − μ_θ)² / σ_k².
    mu_*: (B, C, H, W); sigma: (B,) > 0. Returns (B,)."""
    if (sigma <= 0).any():
        raise ValueError("σ_k must be > 0: a deterministic step has no KL to a reference policy")
    d2 = (mu_ref - mu_theta).pow(2).flatten(1).mean(1)   # (B,)
    return d2 / sigma.to(d2.dtype).pow(2)


def sqdf_loss(reward: torch.Tensor, mu_theta: torch.Tensor, mu_ref: torch.Tensor, sigma: torch.Tensor,
              k: torch.Tensor, num_steps: int, gamma: float, alpha: float) -> tuple[torch.Tensor, dict[str, float]]:
    """L = −mean_b(γ^{K−k−1} r − α KL_k) and its parts: reward (B,) of decode(x̂0) with
    a gradient to θ; mu_theta (B, C, H, W) with a gradient, mu_ref without; sigma, k (B,)."""
    q = discount(gamma, k, num_steps).to(reward.dtype).to(reward.device) * reward   # (B,)
    kl = mean_kl(mu_theta, mu_ref.detach(), sigma)                                   # (B,)
    loss = -(q - alpha * kl).mean()
    return loss, {"q": float(q.detach().mean()), "kl": float(kl.detach().mean()), "reward": float(reward.detach().mean())}

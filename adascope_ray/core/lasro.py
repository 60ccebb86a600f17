"""LaSRO's generator objective (arXiv 2411.15247; ours where its abstract is silent) as
pure torch math (no ray, no diffusers).

Notation (core/sde.py's): a K-step chain x_0 → … → x_K (K ≤ 2), every step with a
gradient; s the standardised surrogate reward of the final latent.

    KL   = Σ_k mean_d (μ_ref,d(x_k) − μ_θ,d(x_k))² / σ_k²     summed over the chain's steps
    L    = −mean_b (s(x_K) − α KL)
"""
from __future__ import annotations

import torch

from .sqdf import mean_kl


def lasro_loss(reward: torch.Tensor, mu_theta: list[torch.Tensor], mu_ref: list[torch.Tensor],
               sigma: list[torch.Tensor], alpha: float) -> tuple[torch.Tensor, dict[str, float]]:
    """reward (B,) s(x_K) with a gradient; per step k: mu_theta[k], mu_ref[k] (B, C, H, W)
    (the reference without a gradient), sigma[k] (B,). Returns L and its parts."""
    kl = sum((mean_kl(m, r.detach(), s) for m, r, s in zip(mu_theta, mu_ref, sigma)),
             torch.zeros_like(reward))                                                # (B,); 0 with no steps
    loss = -(reward - alpha * kl).mean()
    return loss, {"reward": float(reward.detach().mean()), "kl": float(kl.detach().mean())}

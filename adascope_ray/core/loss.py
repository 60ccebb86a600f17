"""The clipped policy-gradient loss over the selected (sample, step) pairs, and the KL
term to the reference policy.

    r = exp(log π_θ − log π_old)
    L = mean over pairs of max(−A r, −A clip(r, 1−ε, 1+ε))          (PPO / DDPO)
    KL(π_θ(·|x_k) ‖ π_ref(·|x_k)) = ‖μ_θ − μ_ref‖² / 2σ_k²          (equal variances)
        averaged over latent dimensions, as the log-probs are
    L_total = L + β mean over pairs of KL
"""
from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class PGStats:
    approx_kl: float    # ½ mean (log π_θ − log π_old)²
    clipfrac: float     # share of pairs with |r − 1| > ε
    ratio_mean: float


def clipped_pg_loss(log_prob: torch.Tensor, old_log_prob: torch.Tensor,
                    advantages: torch.Tensor, clip_range: float) -> tuple[torch.Tensor, PGStats]:
    """log_prob, old_log_prob, advantages: (N,) for N selected pairs."""
    ratio = torch.exp(log_prob - old_log_prob)
    unclipped = -advantages * ratio
    clipped = -advantages * torch.clamp(ratio, 1.0 - clip_range, 1.0 + clip_range)
    loss = torch.maximum(unclipped, clipped).mean()
    with torch.no_grad():
        stats = PGStats(
            approx_kl=float(0.5 * ((log_prob - old_log_prob) ** 2).mean()),
            clipfrac=float(((ratio - 1.0).abs() > clip_range).float().mean()),
            ratio_mean=float(ratio.mean()),
        )
    return loss, stats


def kl_to_reference(mean: torch.Tensor, ref_mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    """mean, ref_mean: (N, C, H, W) step means of the policy and the reference at the same
    x_k; std: (N, 1, 1, 1) the step's σ_k (shared: the variance does not depend on θ).
    Returns (N,): the Gaussians' KL per latent dimension."""
    kl = (mean - ref_mean.detach()) ** 2 / (2 * std**2)
    return kl.mean(dim=tuple(range(1, kl.dim())))

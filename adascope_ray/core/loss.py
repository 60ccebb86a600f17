"""The clipped policy-gradient loss over the selected (sample, step) pairs.

    r = exp(log π_θ − log π_old)
    L = mean over pairs of max(−A r, −A clip(r, 1−ε, 1+ε))          (PPO / DDPO)
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

"""The clipped policy-gradient loss over the selected (sample, step) pairs, and the KL
term to the reference policy.

    r = exp(log π_θ − log π_old)
    L = mean over pairs of max(−A r, −A clip(r, 1−ε, 1+ε))          (PPO / DDPO)
    KL(π_θ(·|x_k) ‖ π_ref(·|x_k)) = ‖μ_θ − μ_ref‖² / 2σ_k²          (equal variances)
        averaged over latent dimensions, as the log-probs are
    L_total = L + β mean over pairs of KL

Decoupled form, for rollouts sampled by older weights (learner.max_staleness ≥ 1;
Hilton et al. 2021, "Batch size-invariance for policy optimization"). π_b: the
behaviour policy that sampled x_{k+1}; π_prox: the learner's weights before this
update (its log-probs recomputed once, without gradient):

    r = exp(log π_θ − log π_prox)                     the trust region is around π_prox
    w = min(exp(log π_prox − log π_b), c)             importance weight, capped at c
    L = mean over pairs of w · max(−A r, −A clip(r, 1−ε, 1+ε))

A fresh sample has π_prox = π_b, so w = 1 and the term is the plain one above.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class PGStats:
    approx_kl: float    # ½ mean (log π_θ − log π_old)²
    clipfrac: float     # share of pairs with |r − 1| > ε
    ratio_mean: float
    is_weight_mean: float = 1.0  # decoupled form: mean of w over the pairs (1 when every pair is fresh)
    is_weight_max: float = 1.0
    is_capped: float = 0.0       # share of pairs whose weight the cap c cut


def clipped_pg_loss(log_prob: torch.Tensor, old_log_prob: torch.Tensor,
                    advantages: torch.Tensor, clip_range: float,
                    behaviour_log_prob: torch.Tensor | None = None,
                    weight_cap: float = float("inf")) -> tuple[torch.Tensor, PGStats]:
    """log_prob, old_log_prob, advantages: (N,) for N selected pairs. With
    `behaviour_log_prob` (N,), old_log_prob is the proximal policy's and each pair's
    term is weighted by w = min(π_prox / π_b, weight_cap) (the decoupled form);
    without it, the plain loss."""
    ratio = torch.exp(log_prob - old_log_prob)
    unclipped = -advantages * ratio
    clipped = -advantages * torch.clamp(ratio, 1.0 - clip_range, 1.0 + clip_range)
    terms = torch.maximum(unclipped, clipped)  # (N,)
    w = raw = None
    if behaviour_log_prob is not None:
        raw = torch.exp(old_log_prob - behaviour_log_prob).detach()  # (N,) π_prox / π_b
        w = raw.clamp(max=weight_cap)
        terms = w * terms
    loss = terms.mean()
    with torch.no_grad():
        stats = PGStats(
            approx_kl=float(0.5 * ((log_prob - old_log_prob) ** 2).mean()),
            clipfrac=float(((ratio - 1.0).abs() > clip_range).float().mean()),
            ratio_mean=float(ratio.mean()),
            **({} if w is None else {
                "is_weight_mean": float(w.mean()), "is_weight_max": float(w.max()),
                "is_capped": float((raw > weight_cap).float().mean())}),
        )
    return loss, stats


def kl_to_reference(mean: torch.Tensor, ref_mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    """mean, ref_mean: (N, C, H, W) step means of the policy and the reference at the same
    x_k; std: (N, 1, 1, 1) the step's σ_k (shared: the variance does not depend on θ).
    Returns (N,): the Gaussians' KL per latent dimension."""
    kl = (mean - ref_mean.detach()) ** 2 / (2 * std**2)
    return kl.mean(dim=tuple(range(1, kl.dim())))

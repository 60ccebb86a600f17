"""Learning a reward's order from its samples: the pairwise ranking objective of a
surrogate reward model (LaSRO, arXiv 2411.15247), as pure math (no ray, no diffusers).

Notation: B samples with true rewards r (B,) and group ids g (B,) (the samples of one
prompt form a group); the surrogate scores them s (B,).

    1. P = {(i, j) : g_i = g_j, r_i > r_j + m}       ordered pairs within a group whose
                                                    rewards differ by more than the margin m
    2. L = mean_{(i,j) ∈ P} log(1 + exp(−(s_i − s_j)))   the logistic (Bradley–Terry) loss
    3. accuracy = mean_{(i,j) ∈ P} [s_i > s_j]          (ties in s count one half)

Only the order inside a group is learned: rewards of different prompts are never
compared, so a prompt that is easy for every sample does not dominate the scale.
"""
from __future__ import annotations

import numpy as np
import torch


def group_pairs(rewards: np.ndarray, group_ids: np.ndarray, margin: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """(i, j) index arrays of P: same group, r_i > r_j + margin. Each unordered pair of
    unequal rewards appears once, better first."""
    r, g = np.asarray(rewards, np.float64), np.asarray(group_ids)
    better = (g[:, None] == g[None, :]) & (r[:, None] > r[None, :] + margin)   # (B, B)
    i, j = np.nonzero(better)
    return i, j


def pairwise_ranking_loss(scores: torch.Tensor, i: np.ndarray, j: np.ndarray) -> torch.Tensor:
    """L of step 2 for scores (B,) and pairs (i, j); 0 (with a gradient of 0) when P is empty."""
    if len(i) == 0:
        return scores.sum() * 0.0
    d = scores[torch.as_tensor(i, device=scores.device)] - scores[torch.as_tensor(j, device=scores.device)]
    return torch.nn.functional.softplus(-d).mean()


def ranking_accuracy(scores: np.ndarray, i: np.ndarray, j: np.ndarray) -> float:
    """Share of pairs the scores order as the rewards do (ties count one half); NaN
    when there are no pairs."""
    if len(i) == 0:
        return float("nan")
    s = np.asarray(scores, np.float64)
    d = s[i] - s[j]
    return float(((d > 0) + 0.5 * (d == 0)).mean())

"""Reward-ranked fine-tuning (RAFT, arXiv 2304.06767) as pure math (no ray, no diffusers):
keep the best samples of each prompt group and fit the denoiser to them with the
ordinary diffusion loss, at the noise levels of the window's steps.

Notation (core/sde.py's): x0 a kept sample's clean final latent, k a step of the
window, ᾱ_k its cumulative alpha, ε ~ N(0, I) fresh noise.

    x_k    = √ᾱ_k x0 + √(1−ᾱ_k) ε                    the sample re-noised to step k
    target = ε                                        (prediction_type = epsilon)
           = √ᾱ_k ε − √(1−ᾱ_k) x0                     (v_prediction: v)
    L      = mean over terms and latent dims of (f_θ(x_k, k, c) − target)²

Selection: in a group of G samples of one prompt the top_k by reward are kept; a group
whose rewards all tie has nothing to rank and keeps none. Ties inside a group are
broken by position (the earlier sample first), so the choice is reproducible.
"""
from __future__ import annotations

import numpy as np
import torch

from .sde import _rows


def ranked_keep(rewards: np.ndarray, group_ids: np.ndarray, top_k: int, valid: np.ndarray | None = None) -> np.ndarray:
    """(B,) bool: the top_k samples by reward of each group with a reward spread.
    rewards, group_ids: (B,); valid: (B,) bool, samples that may be kept (others are
    neither kept nor counted in their group's spread)."""
    rewards = np.asarray(rewards, np.float64)
    ok = np.ones(len(rewards), bool) if valid is None else np.asarray(valid, bool)
    keep = np.zeros(len(rewards), bool)
    for g in np.unique(group_ids[ok]):
        rows = np.flatnonzero(ok & (group_ids == g))
        r = rewards[rows]
        if r.max() == r.min():
            continue
        order = rows[np.lexsort((rows, -r))]  # reward high to low, then position
        keep[order[:top_k]] = True
    return keep


def noised(x0: torch.Tensor, eps: torch.Tensor, alpha_bar) -> torch.Tensor:
    """x_k = √ᾱ x0 + √(1−ᾱ) ε; x0, eps (n, C, H, W), alpha_bar scalar or (n,)."""
    a = _rows(alpha_bar, x0)
    return a.sqrt() * x0 + (1 - a).sqrt() * eps


def denoising_target(x0: torch.Tensor, eps: torch.Tensor, alpha_bar, prediction_type: str) -> torch.Tensor:
    """What the denoiser should output at x_k: ε, or v = √ᾱ ε − √(1−ᾱ) x0."""
    if prediction_type == "epsilon":
        return eps
    if prediction_type == "v_prediction":
        a = _rows(alpha_bar, x0)
        return a.sqrt() * eps - (1 - a).sqrt() * x0
    raise ValueError(f"unsupported prediction_type {prediction_type!r}")


def denoising_loss(model_out: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """(n,) mean over latent dims of (f_θ − target)²."""
    return ((model_out - target.detach()) ** 2).flatten(1).mean(1)

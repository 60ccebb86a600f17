"""Typed data passed between stages. Arrays are numpy (cheap through Ray's object
store); shapes use B = trajectories, K = denoising steps, C/H/W = latent dims,
L/D = text tokens / embedding width."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class PromptBatch:
    """What a sampler is asked to generate: B = groups x group_size trajectories."""
    prompts: list[str]        # (B,) one per trajectory
    group_ids: np.ndarray     # (B,) int: trajectories of one prompt share an id
    seed: int                 # seeds this batch's noise (reproducible rollouts)
    policy_version: int       # weights version the sampler must hold
    window: tuple[int, int] | None = None  # window.placement = sampler: steps [start, end) stochastic, the rest η = 0
    own_starts: bool = False  # every row its own x_T whatever sampling.initial_noise says (evaluation: a (caption, seed)'s noise is not a training setting's)


@dataclass(frozen=True)
class SignalTraces:
    """AdaScope's per-step signals, computed by the sampler (docs/adascope.md)."""
    structural: np.ndarray    # (B, K) S_k
    semantic: np.ndarray      # (B, K) C_k (weight-free fallback)
    convergence: np.ndarray   # (B, K) D_k, +inf at k = 0
    var_pooled: np.ndarray    # (B,) variance of the pooled final x̂0 (prior's s²)
    var_full: np.ndarray      # (B,) variance of the final x̂0
    reward: np.ndarray | None = None  # (B, K) R_k, the reward of decode(x̂0_k) (window.reward_trace), else None


@dataclass(frozen=True)
class Rollout:
    policy_version: int
    prompts: list[str]            # (B,)
    group_ids: np.ndarray         # (B,) int
    step_indices: np.ndarray      # (K,) int, 0 = noisiest
    timesteps: np.ndarray         # (K,) int scheduler timesteps
    latents: np.ndarray           # (B, J, C, H, W) float32: x_k for the J steps of latent_steps (J = K+1: every step)
    log_probs: np.ndarray         # (B, K) float32: log π_old(x_{k+1} | x_k)
    prompt_embeds: np.ndarray     # (B, L, D) float32
    negative_embeds: np.ndarray | None  # (1, L, D) float32 under CFG, else None
    signals: SignalTraces
    images: np.ndarray            # (B, H, W, 3) uint8, final images
    sampler_forward_rows: int     # rows pushed through the denoiser (cost counter)
    timings: dict[str, float] = field(default_factory=dict)
    pooled_embeds: np.ndarray | None = None    # (B, P) pooled text (SD3-class), else None
    negative_pooled: np.ndarray | None = None  # (1, P) under CFG (SD3-class), else None
    stochastic: np.ndarray | None = None  # (K,) bool: steps sampled with noise (the others η = 0, log-prob 0); None = all
    counters: dict[str, int] = field(default_factory=dict)  # passes beside the denoiser's, e.g. probe_decodes
    latent_steps: np.ndarray | None = None  # (J,) int: the k of each x_k in latents (window.placement = sampler: x_start … x_end); None = 0 … K

    @property
    def batch_size(self) -> int:
        return len(self.prompts)


@dataclass(frozen=True)
class RewardResult:
    total: np.ndarray                    # (B,) weighted sum of the components
    components: dict[str, np.ndarray]    # name -> (B,)


@dataclass(frozen=True)
class ScoredRollout:
    rollout: Rollout
    rewards: RewardResult


@dataclass(frozen=True)
class WeightsUpdate:
    version: int
    state: dict[str, np.ndarray]  # trainable parameters by name


@dataclass(frozen=True)
class UpdateStats:
    """What one learner update did; becomes part of the iteration's metrics."""
    policy_version: int            # version after the update
    reward_mean: float
    reward_std: float
    reward_components: dict[str, float]
    zero_std_ratio: float
    dropped_stale: int
    window_start_mean: float
    window_length_mean: float
    window_hist: list[float]       # (K,) pairs trained per step in one pass (mean over passes when they differ)
    trained_pairs: int
    learner_forward_rows: int
    loss: float
    approx_kl: float
    clipfrac: float
    grad_norm: float
    k_lo: int
    k_hi: int
    samples: int                   # trajectories received (stale ones included)
    sampler_forward_rows: int      # denoiser rows the samplers spent on them
    rollout_timings: dict[str, float] = field(default_factory=dict)  # slowest sampler's
    rollout_counters: dict[str, int] = field(default_factory=dict)   # Rollout.counters, summed over samplers
    timings: dict[str, float] = field(default_factory=dict)
    dropped_nonfinite: int = 0     # samples with a non-finite reward, log-prob or latent
    skipped_steps: int = 0         # optimizer steps skipped for a non-finite gradient
    loss_terms: dict[str, float] = field(default_factory=dict)  # the loss's parts, e.g. "kl_ref" (mean over trained pairs)
    next_window: tuple[int, int] | None = None  # window.placement = sampler: the steps the next rollouts sample stochastically
    off_policy: dict[str, float] = field(default_factory=dict)  # staleness_mean; the decoupled loss's importance weights when a sample was stale
    algorithm: dict[str, float] = field(default_factory=dict)   # sqdf / lasro: their own metrics, names prefixed ("surrogate/…", "sqdf/…", "replay/…")


@dataclass(frozen=True)
class LearnerState:
    """Everything the learner needs to continue exactly where it stopped."""
    version: int
    tensors: dict[str, "object"]  # name -> CPU torch tensor: "param.<name>", "opt.<i>.<key>"
    meta: dict                    # JSON-able: optimizer hyper-parameters, tracker, RNG state

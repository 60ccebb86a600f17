"""Which denoising steps enter the policy-gradient update (docs/adascope.md).

Every strategy returns a `WindowSelection`: a (B, K) boolean mask over samples and
steps, k = 0 the noisiest. Strategies are pure functions of their inputs and an
explicit numpy Generator. `STRATEGIES` registers each one with what it reads; a
strategy gets only its own sub-config (config.py: window.<strategy>).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np


@dataclass(frozen=True)
class WindowSelection:
    mask: np.ndarray  # (B, K) bool: step k of sample i is trained on

    @property
    def start(self) -> np.ndarray:
        """(B,) first selected step, K where nothing is selected."""
        k = self.mask.shape[1]
        return np.where(self.mask.any(1), self.mask.argmax(1), k)

    @property
    def length(self) -> np.ndarray:
        """(B,) number of selected steps."""
        return self.mask.sum(1)


def _from_bounds(starts: np.ndarray, ends: np.ndarray, k: int) -> WindowSelection:
    steps = np.arange(k)[None, :]
    return WindowSelection((steps >= starts[:, None]) & (steps < ends[:, None]))


def full_window(batch: int, k: int) -> WindowSelection:
    return WindowSelection(np.ones((batch, k), dtype=bool))


def fraction_window(batch: int, k: int, fraction: float, rng: np.random.Generator) -> WindowSelection:
    """A random subset of floor(f K) steps per sample (DDPO's timestep_fraction)."""
    n = max(1, int(np.floor(fraction * k)))
    mask = np.zeros((batch, k), dtype=bool)
    for i in range(batch):
        mask[i, rng.choice(k, size=n, replace=False)] = True
    return WindowSelection(mask)


def random_window(batch: int, k: int, size: int, start_range: tuple[int, int],
                  rng: np.random.Generator) -> WindowSelection:
    """One contiguous window of `size` steps per iteration, start uniform in the
    inclusive range (Flow-GRPO-Fast's random SDE segment)."""
    lo, hi = start_range
    start = int(rng.integers(lo, hi + 1))
    return _from_bounds(np.full(batch, start), np.full(batch, min(start + size, k)), k)


def sliding_window(batch: int, k: int, size: int, iteration: int, start: int,
                   every: int, stride: int) -> WindowSelection:
    """A window that moves `stride` steps later every `every` iterations and stops
    at the end of the trajectory (MixGRPO's sliding window)."""
    s = min(start + (iteration // every) * stride, k - size)
    return _from_bounds(np.full(batch, s), np.full(batch, s + size), k)


def reward_progress(r_mean: np.ndarray) -> np.ndarray | None:
    """ρ_k = (R̄_k − R̄_0) / (R̄_{K−1} − R̄_0): how much of the group's reward evolution is
    done by step k; None when the reward does not evolve (|R̄_{K−1} − R̄_0| ≤ 1e-6)."""
    span = r_mean[-1] - r_mean[0]
    return None if abs(span) <= 1e-6 else (r_mean - r_mean[0]) / span


def reward_credit(r_trace: np.ndarray) -> np.ndarray:
    """c_k (K,) for one group's reward traces (G, K): the within-group variance of the
    reward increment ΔR_k = R_{k+1} − R_k, how differently the samples' step-k noise moved
    their reward (ours; the last step, with no R_{K}, gets c = 0)."""
    dr = np.diff(r_trace, axis=1)                                              # (G, K−1)
    return np.append(dr.var(axis=0), 0.0)


def credit_bounds(credit: np.ndarray, size: int) -> tuple[int, int]:
    """[k_s, k_s + size): the contiguous window with the largest summed credit (the
    earliest of equals; [0, size) when no step has any)."""
    k = len(credit)
    size = min(size, k)
    sums = np.convolve(credit, np.ones(size), mode="valid")                    # (K − size + 1,)
    k_s = int(np.argmax(sums)) if sums.max() > 0 else 0
    return k_s, k_s + size


def credit_window(reward_trace: np.ndarray, group_ids: np.ndarray, size: int) -> WindowSelection:
    """One window per prompt group where its reward is still being decided: reward_trace
    (B, K) R_k, group_ids (B,)."""
    b, k = reward_trace.shape
    starts, ends = np.zeros(b, dtype=int), np.zeros(b, dtype=int)
    for g in np.unique(group_ids):
        rows = group_ids == g
        starts[rows], ends[rows] = credit_bounds(reward_credit(reward_trace[rows]), size)
    return _from_bounds(starts, ends, k)


def adascope_bounds(s_mean: np.ndarray, c_mean: np.ndarray, d_mean: np.ndarray, *,
                    k_lo: int, k_hi: int, tau_s: float, tau_e: float, eps_conv: float,
                    w_min: int, w_max: int, r_mean: np.ndarray | None = None,
                    tau_r: float | None = None) -> tuple[int, int]:
    """The start/end rule for one prompt group, on its group-mean traces (K,).

    k_s = max(k_lo, first k with S̄_k ≥ τ_s)                       (K if never)
    k_e = first k ≥ k_s + w_min with C̄_k ≥ τ_e or D̄_k < ε_conv    (K if never)
          or, with τ_r and the reward trace R̄, ρ_k ≥ τ_r (reward_progress)
    k_e = clamp(k_e, ≤ min(k_s + w_max, k_hi, K)), and never below k_s.
    The prior narrows but never closes the window: k_hi is raised to k_s + w_min, so
    a group whose layout has formed (k_s < K) trains on at least min(w_min, K − k_s)
    steps; only a structural signal that never reaches τ_s leaves it empty.
    The group trains on k_s ≤ k < k_e.
    """
    k = len(s_mean)
    hits = np.nonzero(s_mean >= tau_s)[0]
    k_s = max(k_lo, int(hits[0]) if len(hits) else k)
    k_s = min(k_s, k)
    k_hi = max(k_hi, min(k_s + w_min, k))
    stop = (c_mean >= tau_e) | (d_mean < eps_conv)
    rho = reward_progress(r_mean) if tau_r is not None and r_mean is not None else None
    if rho is not None:
        stop |= rho >= tau_r
    stop[: min(k_s + w_min, k)] = False
    ends = np.nonzero(stop)[0]
    k_e = int(ends[0]) if len(ends) else k
    k_e = min(k_e, k_s + w_max, k_hi, k)
    return k_s, max(k_e, k_s)


def adascope_window(structural: np.ndarray, semantic: np.ndarray, convergence: np.ndarray,
                    group_ids: np.ndarray, *, k_lo: int, k_hi: int, tau_s: float,
                    tau_e: float, eps_conv: float, w_min: int, w_max: int,
                    reward_trace: np.ndarray | None = None, tau_r: float | None = None) -> WindowSelection:
    """AdaScope's adaptive window: one window per prompt group, shared by its samples.
    structural, semantic, convergence: (B, K) traces S, C, D; reward_trace: (B, K) R_k
    or None; group_ids: (B,)."""
    b, k = structural.shape
    starts, ends = np.zeros(b, dtype=int), np.zeros(b, dtype=int)
    for g in np.unique(group_ids):
        rows = group_ids == g
        starts[rows], ends[rows] = adascope_bounds(
            structural[rows].mean(0), semantic[rows].mean(0), convergence[rows].mean(0),
            k_lo=k_lo, k_hi=k_hi, tau_s=tau_s, tau_e=tau_e, eps_conv=eps_conv,
            w_min=w_min, w_max=w_max, tau_r=tau_r,
            r_mean=None if reward_trace is None else reward_trace[rows].mean(0))
    return _from_bounds(starts, ends, k)


@dataclass(frozen=True)
class WindowInputs:
    """What a strategy may read. Signal traces are (B, K); group_ids (B,)."""
    batch: int
    k: int
    iteration: int
    rng: np.random.Generator
    structural: np.ndarray | None = None
    semantic: np.ndarray | None = None
    convergence: np.ndarray | None = None
    group_ids: np.ndarray | None = None
    k_lo: int = 0            # schedule prior bounds (K = no bound)
    k_hi: int | None = None
    reward_trace: np.ndarray | None = None  # (B, K) R_k, when the samplers probe it


@dataclass(frozen=True)
class Strategy:
    """A registry entry: select(settings, inputs) with the strategy's own sub-config."""
    select: Callable[[Any, WindowInputs], WindowSelection]
    signals: bool = False           # reads the signal traces S, C, D and the group ids
    redraw_each_pass: bool = False  # drawn again for every inner epoch (DDPO's timestep_fraction)
    reward_trace: bool = False      # reads the reward trace R_k (window.reward_trace)


def _adascope(c, x: WindowInputs) -> WindowSelection:
    k_hi = x.k if x.k_hi is None else x.k_hi
    return adascope_window(x.structural, x.semantic, x.convergence, x.group_ids,
                           k_lo=x.k_lo if c.use_prior else 0, k_hi=k_hi if c.use_prior else x.k,
                           tau_s=c.tau_s, tau_e=c.tau_e, eps_conv=c.eps_conv, w_min=c.w_min,
                           w_max=c.resolved_w_max(x.k), reward_trace=x.reward_trace, tau_r=c.tau_r)


STRATEGIES: dict[str, Strategy] = {
    "full": Strategy(lambda c, x: full_window(x.batch, x.k)),
    "fraction": Strategy(lambda c, x: fraction_window(x.batch, x.k, c.fraction, x.rng), redraw_each_pass=True),
    "random_window": Strategy(lambda c, x: random_window(x.batch, x.k, c.size, tuple(c.start_range), x.rng)),
    "sliding": Strategy(lambda c, x: sliding_window(x.batch, x.k, c.size, x.iteration, c.start, c.every, c.stride)),
    "adascope": Strategy(_adascope, signals=True),
    "credit": Strategy(lambda c, x: credit_window(x.reward_trace, x.group_ids, c.size), signals=True, reward_trace=True),
}


def select_window(strategy: str, settings, inputs: WindowInputs) -> WindowSelection:
    """The window of `strategy` (a STRATEGIES key) with its own sub-config `settings`."""
    if strategy not in STRATEGIES:
        raise ValueError(f"unknown window strategy {strategy!r}; known: {', '.join(STRATEGIES)}")
    entry = STRATEGIES[strategy]
    if entry.signals and inputs.structural is None:
        raise ValueError(f"window strategy {strategy!r} needs the signal traces")
    if entry.reward_trace and inputs.reward_trace is None:
        raise ValueError(f"window strategy {strategy!r} needs the reward trace R_k (window.reward_trace.enabled)")
    return entry.select(settings, inputs)

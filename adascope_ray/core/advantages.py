"""Advantages from final rewards, normalised per prompt (docs/adascope.md, "Update").

A_i = clip((R_i − mean_g) / (std_g + eps), −A_max, A_max), std the population std.
Groups whose rewards have zero spread carry no signal: their samples are marked
invalid (dropped from the update) and counted as zero_std_ratio.

Each part normalised on its own (advantage.normalise = each_part; ours, after the
decoupled normalisation of multi-reward GRPO): for parts p (a reward, or each check of
a reward that has checks) with weights w_p,

    z_ip = (r_ip − mean_g r_p) / (std_g r_p + eps)      over the group's finite r_p;
                                                        0 where r_ip is NaN or the part
                                                        has no spread in the group
    S_i  = Σ_p w_p z_ip
    A_i  = the group normalisation above applied to S_i

so a part whose spread within a group is small (a check most samples pass) weighs as
much as one whose spread is large, where the total lets the widest part decide.
"""
from __future__ import annotations

from collections import defaultdict, deque
from dataclasses import dataclass

import numpy as np

ZERO_SPREAD = 1e-8


@dataclass(frozen=True)
class Advantages:
    values: np.ndarray  # (B,) float32, 0 where invalid
    valid: np.ndarray   # (B,) bool: False for samples of zero-spread groups

    @property
    def zero_std_ratio(self) -> float:
        return float(1.0 - self.valid.mean()) if len(self.valid) else 0.0


def _normalise(r: np.ndarray, mean: float, std: float, eps: float, clip: float) -> np.ndarray:
    return np.clip((r - mean) / (std + eps), -clip, clip)


def group_advantages(rewards: np.ndarray, group_ids: np.ndarray, *, std_eps: float = 1e-4,
                     clip: float = 5.0) -> Advantages:
    """Statistics of each group of samples that share a prompt."""
    rewards = np.asarray(rewards, dtype=np.float64)
    adv = np.zeros_like(rewards)
    valid = np.zeros(len(rewards), dtype=bool)
    for g in np.unique(group_ids):
        rows = group_ids == g
        r = rewards[rows]
        std = r.std()
        if std > ZERO_SPREAD and np.isfinite(std):
            adv[rows] = _normalise(r, r.mean(), std, std_eps, clip)
            valid[rows] = True
    return Advantages(adv.astype(np.float32), valid)


def each_part_advantages(parts: list[tuple[float, np.ndarray]], group_ids: np.ndarray, *,
                         std_eps: float = 1e-4, clip: float = 5.0) -> Advantages:
    """parts: (w_p, r_p (B,)) pairs; the module docstring's each-part normalisation."""
    group_ids = np.asarray(group_ids)
    s = np.zeros(len(group_ids), dtype=np.float64)                 # S_i
    for weight, r in parts:
        r = np.asarray(r, dtype=np.float64)
        for g in np.unique(group_ids):
            rows = np.flatnonzero(group_ids == g)
            ok = rows[np.isfinite(r[rows])]
            std = r[ok].std() if len(ok) > 1 else 0.0
            if std > ZERO_SPREAD:
                s[ok] += weight * (r[ok] - r[ok].mean()) / (std + std_eps)
    return group_advantages(s, group_ids, std_eps=std_eps, clip=clip)


class PerPromptStatTracker:
    """DDPO's running per-prompt statistics, for small groups: each prompt keeps its
    last `buffer_size` rewards; until it has `min_count`, the batch's statistics
    are used instead."""

    def __init__(self, buffer_size: int, min_count: int):
        self.buffer_size, self.min_count = buffer_size, min_count
        self.buffers: dict[str, deque] = defaultdict(lambda: deque(maxlen=buffer_size))

    def update(self, prompts: list[str], rewards: np.ndarray, *, std_eps: float = 1e-4,
               clip: float = 5.0) -> Advantages:
        rewards = np.asarray(rewards, dtype=np.float64)
        adv = np.zeros_like(rewards)
        valid = np.zeros(len(rewards), dtype=bool)
        prompts_arr = np.asarray(prompts, dtype=object)
        for p in dict.fromkeys(prompts):
            rows = prompts_arr == p
            buf = self.buffers[p]
            buf.extend(rewards[rows].tolist())
            ref = np.asarray(buf) if len(buf) >= self.min_count else rewards
            std = ref.std()
            if std > ZERO_SPREAD and np.isfinite(std):
                adv[rows] = _normalise(rewards[rows], ref.mean(), std, std_eps, clip)
                valid[rows] = True
        return Advantages(adv.astype(np.float32), valid)

    def state_dict(self) -> dict[str, list[float]]:
        return {p: list(b) for p, b in self.buffers.items()}

    def load_state_dict(self, state: dict[str, list[float]]) -> None:
        self.buffers.clear()
        for p, values in state.items():
            self.buffers[p].extend(values)

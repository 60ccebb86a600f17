"""Advantages from final rewards, normalised per prompt (docs/adascope.md, "Update").

A_i = clip((R_i − mean_g) / (std_g + eps), −A_max, A_max), std the population std.
Groups whose rewards have zero spread carry no signal: their samples are marked
invalid (dropped from the update) and counted as zero_std_ratio.
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

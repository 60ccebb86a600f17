"""Stopping on the validation split (docs/adascope.md, "Stopping"; the rule is ours:
the paper says only that training ends "once the denoising converges and reward gains
saturate").

Notation: evaluations e_0 (before training), e_1, ... of the same prompts with the
same noise, each an (S, N) array of rewards; d(a, b) is the paired difference b − a
with its standard error (core/paired.py).

    reference r   the evaluation that last *improved*: r = e_0 at first; e_j improves
                  when d(r, e_j) is "better" (d̄ > z SE), and then r = e_j
    stale         evaluations since the reference was last replaced
    stop          when stale ≥ patience (the gain has saturated: `patience`
                  evaluations in a row none of which is better than r beyond noise)
    best          the evaluation with the highest mean reward (the one exported)
    guard         optional: stop when e_j is "worse" than the best by the paired test
                  and more than `guard_margin` below it (the policy is losing what it had)

Pure: a function of the evaluation history, so a resumed run recomputes it.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .paired import Z_DEFAULT, paired_difference


@dataclass(frozen=True)
class StopDecision:
    stop: bool
    reason: str      # "" when not stopping; else "saturated" or "guard"
    best: int        # index of the best evaluation (highest mean reward)
    reference: int   # index of the evaluation that last improved
    stale: int       # evaluations since the reference was last replaced


def stop_decision(history: list[np.ndarray], patience: int | None, guard_margin: float | None = None,
                  z: float = Z_DEFAULT) -> StopDecision:
    """history: the evaluations' reward arrays, oldest (before training) first, all (S, N)
    and aligned. patience ≥ 1, None = never stop for saturation; guard_margin None = no guard."""
    if patience is not None and patience < 1:
        raise ValueError(f"patience must be >= 1, got {patience}")
    ref, stale, best = 0, 0, 0
    means = [float(np.nanmean(h)) for h in history]
    for j in range(1, len(history)):
        if paired_difference(history[ref], history[j]).verdict(z) == "better":
            ref, stale = j, 0
        else:
            stale += 1
        if means[j] > means[best]:
            best = j
    last = len(history) - 1
    if guard_margin is not None and last > best:
        drop = paired_difference(history[best], history[last])
        if drop.verdict(z) == "worse" and -drop.mean > guard_margin:
            return StopDecision(True, "guard", best, ref, stale)
    if patience is not None and stale >= patience:
        return StopDecision(True, "saturated", best, ref, stale)
    return StopDecision(False, "", best, ref, stale)

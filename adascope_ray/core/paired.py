"""Paired comparison of two policies on the same samples (docs/evaluation.md).

Notation: for n evaluation samples i (a caption and a noise seed), a_i and b_i are
the rewards of policies A and B on that same caption with that same initial noise.

    d_i  = b_i − a_i                         per-sample difference
    d̄    = (1/n) Σ d_i                       the estimated gain of B over A
    s_d  = sqrt(Σ (d_i − d̄)² / (n − 1))      sample std (ddof = 1)
    SE   = s_d / √n                          standard error of d̄

Pairing removes the variance the two share (the caption's difficulty, the noise
draw), which is most of it. The verdict: "better" when d̄ > z·SE, "worse" when
d̄ < −z·SE, otherwise "no difference" (z = 2 by default). Fewer than two pairs give
SE = NaN and always "no difference".

The SE above answers "would these captions gain again with fresh noise?". Pairs of one
caption (its noise seeds, the training seeds) share that caption's response to the
change, so for "would other captions of the split gain?" the caption is the unit:

    d̄_c  = mean of d_i over caption c's finite pairs       (C captions with any)
    d̄    = (1/C) Σ_c d̄_c                                    (= the pairs' d̄ when every
                                                               caption has as many pairs)
    SE_c = std(d̄_c, ddof = 1) / √C                          clustered_difference()
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

Z_DEFAULT = 2.0


@dataclass(frozen=True)
class PairedDifference:
    mean: float  # d̄: mean of b − a
    se: float    # SE of d̄ (ddof = 1)
    n: int       # pairs

    def verdict(self, z: float = Z_DEFAULT) -> str:
        return verdict(self.mean, self.se, z)

    def __str__(self) -> str:
        return f"{self.mean:+.4f} ± {self.se:.4f} (n={self.n}, {self.verdict()})"


def mean_se(x) -> tuple[float, float]:
    """(mean, standard error with ddof = 1) of the finite values; SE NaN below 2 values."""
    v = np.asarray(x, dtype=np.float64).ravel()
    v = v[np.isfinite(v)]
    if len(v) == 0:
        return math.nan, math.nan
    se = float(v.std(ddof=1) / math.sqrt(len(v))) if len(v) > 1 else math.nan
    return float(v.mean()), se


def paired_difference(a, b) -> PairedDifference:
    """B − A over pairs where both are finite; a and b are aligned (same caption, same noise)."""
    a, b = np.asarray(a, dtype=np.float64).ravel(), np.asarray(b, dtype=np.float64).ravel()
    if a.shape != b.shape:
        raise ValueError(f"paired samples must align: {a.shape[0]} vs {b.shape[0]} values")
    ok = np.isfinite(a) & np.isfinite(b)
    mean, se = mean_se(b[ok] - a[ok])
    return PairedDifference(mean, se, int(ok.sum()))


def clustered_difference(a, b, clusters) -> PairedDifference:
    """B − A with each cluster (a caption) as one unit: the mean of the clusters' mean
    differences and its SE over clusters (module docstring); n counts clusters. a, b and
    clusters (ids, any hashable numbers) align pair for pair."""
    a, b = np.asarray(a, dtype=np.float64).ravel(), np.asarray(b, dtype=np.float64).ravel()
    ids = np.asarray(clusters).ravel()
    if not a.shape == b.shape == ids.shape:
        raise ValueError(f"pairs and clusters must align: {a.shape[0]}, {b.shape[0]} and {ids.shape[0]} values")
    ok = np.isfinite(a) & np.isfinite(b)
    d, ids = (b - a)[ok], ids[ok]
    means = [d[ids == c].mean() for c in np.unique(ids)]      # (C,)
    mean, se = mean_se(means)
    return PairedDifference(mean, se, len(means))


def verdict(mean: float, se: float, z: float = Z_DEFAULT) -> str:
    """'better' / 'worse' when |mean| exceeds z standard errors, else 'no difference'."""
    if not (math.isfinite(mean) and math.isfinite(se)):
        return "no difference"
    if mean > z * se:
        return "better"
    if mean < -z * se:
        return "worse"
    return "no difference"

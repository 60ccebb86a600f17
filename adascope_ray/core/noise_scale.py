"""How many trajectories an update needs: the gradient noise scale (McCandlish et al.,
"An Empirical Model of Large-Batch Training", 2018), estimated from per-sample gradients.

Notation: g_i (P,) is sample i's contribution to the policy gradient, i = 1 … n, so that
an update on a batch of B samples follows their mean ḡ_B. With G = E[g] (the true
gradient) and Σ = Cov[g]:

    E ‖ḡ_B − G‖² = tr Σ / B                       the noise in a batch-B gradient
    B_noise      = tr Σ / ‖G‖²                    the batch at which noise equals signal

Unbiased estimates from the n samples (all inner products of the Gram matrix
M_ij = g_i · g_j, so nothing of size P is kept beyond g):

    ḡ        = (1/n) Σ g_i
    tr Σ̂     = Σ ‖g_i − ḡ‖² / (n − 1) = (tr M − 1ᵀM1 / n) / (n − 1)
    ‖G‖²̂     = ‖ḡ‖² − tr Σ̂ / n        = 1ᵀM1 / n² − tr Σ̂ / n

‖G‖²̂ can be negative when the signal is below what n samples resolve. Its standard
error is the jackknife's (leave one sample out, from M's submatrices); "resolved"
means ‖G‖²̂ > z · SE; unresolved, tr Σ̂ / (max(‖G‖²̂, 0) + z · SE) still bounds B_noise
from below. A batch B then gives a gradient whose expected cosine with G is
about (1 + B_noise / B)^(−1/2).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class NoiseScale:
    n: int                  # samples
    signal: float           # ‖G‖²̂ (may be < 0 when unresolved)
    signal_se: float        # jackknife SE of ‖G‖²̂
    trace: float            # tr Σ̂
    split_half_cos: float   # cosine between the means of the first and second halves

    def resolved(self, z: float = 2.0) -> bool:
        return self.signal > z * self.signal_se

    @property
    def b_noise(self) -> float:
        """tr Σ̂ / ‖G‖²̂; +inf when ‖G‖²̂ ≤ 0."""
        return self.trace / self.signal if self.signal > 0 else math.inf

    def b_noise_lower(self, z: float = 2.0) -> float:
        """A lower bound on B_noise: tr Σ̂ / (max(‖G‖²̂, 0) + z · SE), the batch needed even
        if the signal were as large as z standard errors above its estimate allow."""
        top = max(self.signal, 0.0) + z * self.signal_se
        return self.trace / top if top > 0 else math.inf

    def expected_cosine(self, batch: int) -> float:
        """≈ cos(ḡ_B, G) for a batch of `batch` samples: (1 + B_noise / B)^(−1/2)."""
        return 1.0 / math.sqrt(1.0 + self.b_noise / batch) if self.signal > 0 else 0.0


def _signal_trace(gram: np.ndarray) -> tuple[float, float]:
    n = gram.shape[0]
    total = gram.sum()
    trace = (np.trace(gram) - total / n) / (n - 1)
    return total / n**2 - trace / n, trace


def noise_scale(grads) -> NoiseScale:
    """grads: (n, P) per-sample gradients (numpy or torch), n ≥ 3."""
    g = np.asarray(grads.detach().cpu() if hasattr(grads, "detach") else grads, dtype=np.float64)
    n = g.shape[0]
    if n < 3:
        raise ValueError(f"noise_scale needs at least 3 per-sample gradients, got {n}")
    gram = g @ g.T                                                        # (n, n)
    signal, trace = _signal_trace(gram)
    keep = ~np.eye(n, dtype=bool)
    loo = np.array([_signal_trace(gram[np.ix_(keep[i], keep[i])])[0] for i in range(n)])  # (n,)
    se = math.sqrt((n - 1) / n * ((loo - loo.mean()) ** 2).sum())
    a, b = g[: n // 2].mean(0), g[n // 2 :].mean(0)
    denom = np.linalg.norm(a) * np.linalg.norm(b)
    cos = float(a @ b / denom) if denom > 0 else 0.0
    return NoiseScale(n, float(signal), se, float(trace), cos)

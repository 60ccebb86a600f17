"""AdaScope's window signals and the Theorem 2 schedule prior (docs/adascope.md).

Shapes: x0_preds is (B, K, C, H, W) — the model's clean-latent prediction x̂0_k at
every step k = 0 (noisiest) … K−1. Every trace returned is (B, K).
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def pearson(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Pearson correlation per leading row over all trailing dims: (N, ...) -> (N,)."""
    a = a.reshape(a.shape[0], -1).double()
    b = b.reshape(b.shape[0], -1).double()
    a = a - a.mean(dim=1, keepdim=True)
    b = b - b.mean(dim=1, keepdim=True)
    denom = (a.norm(dim=1) * b.norm(dim=1)).clamp_min(1e-12)
    return ((a * b).sum(dim=1) / denom).float()


def avg_pool(x: torch.Tensor, kernel: int) -> torch.Tensor:
    """P(·): k×k average pool of (N, C, H, W) latents (kernel capped by the size)."""
    k = max(1, min(kernel, x.shape[-1], x.shape[-2]))
    return F.avg_pool2d(x, k)


def structural_trace(x0_preds: torch.Tensor, pool: int) -> torch.Tensor:
    """S_k = Pearson(P(x̂0_k), P(x̂0_final)) — has the layout formed yet?"""
    b, k = x0_preds.shape[:2]
    pooled = avg_pool(x0_preds.flatten(0, 1), pool).reshape(b, k, -1)     # (B, K, F)
    final = pooled[:, -1:].expand_as(pooled)
    return pearson(pooled.flatten(0, 1), final.flatten(0, 1)).reshape(b, k)


def semantic_trace_fallback(x0_preds: torch.Tensor) -> torch.Tensor:
    """Weight-free C_k = Pearson(x̂0_k, x̂0_final) at full resolution."""
    b, k = x0_preds.shape[:2]
    final = x0_preds[:, -1:].expand_as(x0_preds)
    return pearson(x0_preds.flatten(0, 1), final.flatten(0, 1)).reshape(b, k)


def probe_steps(num_steps: int, every: int) -> list[int]:
    """The steps C_k is probed at: 0, p, 2p, … and always the last, K − 1."""
    return sorted(set(range(0, num_steps, every)) | {num_steps - 1})


def held(values: torch.Tensor, probes: list[int], num_steps: int) -> torch.Tensor:
    """(B, P) values at the probed steps -> (B, K): step k takes the last probe ≤ k."""
    last = torch.searchsorted(torch.tensor(probes), torch.arange(num_steps), right=True) - 1  # (K,) probe index
    return values[:, last]


def semantic_trace_embedding(probe_emb: torch.Tensor, final_emb: torch.Tensor, probes: list[int],
                             num_steps: int) -> torch.Tensor:
    """C_k = cos(e(decode(x̂0_k)), e(final image)) at the probed steps, held to the next probe.

    probe_emb: (B, P, D) embeddings of the probed steps' decoded x̂0 (P = len(probes));
    final_emb: (B, D) of the final images. Step k takes the value of the last probe ≤ k,
    so a threshold on C_k is crossed at a probe, never before one. Returns (B, K)."""
    a = probe_emb.double() / probe_emb.double().norm(dim=-1, keepdim=True).clamp_min(1e-12)
    b = final_emb.double() / final_emb.double().norm(dim=-1, keepdim=True).clamp_min(1e-12)
    cos = (a * b[:, None]).sum(-1)                                          # (B, P)
    return held(cos, probes, num_steps).float()


def convergence_trace(x0_preds: torch.Tensor) -> torch.Tensor:
    """D_k = ‖x̂0_k − x̂0_{k−1}‖ / ‖x̂0_k‖; D_0 = +inf (nothing to compare with)."""
    flat = x0_preds.flatten(2).double()                                    # (B, K, F)
    diff = (flat[:, 1:] - flat[:, :-1]).norm(dim=2)
    rel = diff / flat[:, 1:].norm(dim=2).clamp_min(1e-12)
    inf = torch.full_like(rel[:, :1], math.inf)
    return torch.cat([inf, rel], dim=1).float()


def theorem2_correlation(a_t: float, a_t_tau: float, s_ii: float, s_jj: float,
                         s_ij: float, same_index: bool) -> float:
    """Closed form of Theorem 2: Corr(x_t^i, x_{t+τ}^j) for x0 ~ N(0, Σ)."""
    num = math.sqrt(a_t * a_t_tau) * s_ij + (math.sqrt(a_t_tau / a_t) * (1 - a_t) if same_index else 0.0)
    den = math.sqrt((a_t * s_ii + 1 - a_t) * (a_t_tau * s_jj + 1 - a_t_tau))
    return num / den


def schedule_prior(alpha_bars: torch.Tensor, signal_var: float, noise_var: float) -> torch.Tensor:
    """ψ(k) = ᾱ_k s² / (ᾱ_k s² + (1−ᾱ_k) n): the squared correlation of x_k with x0
    for a band of signal variance s² and per-unit noise variance n (Theorem 2, τ → x0)."""
    a = alpha_bars.double()
    return (a * signal_var / (a * signal_var + (1 - a) * noise_var)).float()


def prior_bounds(alpha_bars: torch.Tensor, var_pooled: float, var_full: float, pool: int,
                 lo: float = 0.5, hi: float = 0.9) -> tuple[int, int]:
    """k_lo = first k with ψ_pooled ≥ lo (layout formed; pooled noise variance 1/pool²),
    k_hi = first k with ψ_full ≥ hi (details formed). K when never reached."""
    k = len(alpha_bars)
    psi_pool = schedule_prior(alpha_bars, var_pooled, 1.0 / pool**2)
    psi_full = schedule_prior(alpha_bars, var_full, 1.0)
    first = lambda m: int(torch.nonzero(m)[0]) if bool(m.any()) else k  # noqa: E731
    return first(psi_pool >= lo), first(psi_full >= hi)

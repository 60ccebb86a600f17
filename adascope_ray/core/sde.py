"""The stochastic DDIM step (eta > 0) as a Gaussian policy, and its log-prob.

Notation (docs/adascope.md, "Stochastic step"):
    x_t       current latent at timestep t                         (B, C, H, W)
    ε̂         the model's noise prediction at (x_t, t)             (B, C, H, W)
    ᾱ_t       cumulative alpha at t; ᾱ_prev at the next (less noisy) timestep
    η         eta: 0 = deterministic DDIM, 1 = DDPM-like variance
Per-row ᾱ values let one micro-batch mix different steps (the learner does this).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch

_HALF_LOG_2PI = 0.5 * math.log(2 * math.pi)


@dataclass
class StepOutput:
    prev_sample: torch.Tensor  # x_prev, (B, C, H, W)
    log_prob: torch.Tensor     # (B,) mean over latent dims of log N(x_prev; μ, σ² I)
    mean: torch.Tensor         # μ, (B, C, H, W)
    std: torch.Tensor          # σ_t, (B, 1, 1, 1)
    x0_pred: torch.Tensor      # x̂0, (B, C, H, W)


def _rows(a: torch.Tensor | float, like: torch.Tensor) -> torch.Tensor:
    """Broadcast a scalar or (B,) tensor to (B, 1, 1, 1) in like's dtype/device."""
    a = torch.as_tensor(a, dtype=like.dtype, device=like.device)
    return a.reshape(-1, *([1] * (like.dim() - 1))) if a.dim() else a


def to_epsilon(model_out: torch.Tensor, x_t: torch.Tensor, alpha_bar_t, prediction_type: str) -> torch.Tensor:
    """Turn an epsilon- or v-prediction into ε̂ (v = √ᾱ ε − √(1−ᾱ) x0)."""
    if prediction_type == "epsilon":
        return model_out
    if prediction_type == "v_prediction":
        a = _rows(alpha_bar_t, x_t)
        return a.sqrt() * model_out + (1 - a).sqrt() * x_t
    raise ValueError(f"unsupported prediction_type {prediction_type!r}")


def to_x0(model_out: torch.Tensor, x_t: torch.Tensor, alpha_bar_t, prediction_type: str) -> torch.Tensor:
    """x̂0 from an epsilon- or v-prediction. ε: (x_t − √(1−ᾱ) ε̂) / √ᾱ (undefined at ᾱ = 0);
    v: √ᾱ x_t − √(1−ᾱ) v̂, finite at ᾱ = 0 — a zero-terminal-SNR schedule's first step."""
    a = _rows(alpha_bar_t, x_t)
    if prediction_type == "epsilon":
        return (x_t - (1 - a).sqrt() * model_out) / a.sqrt()
    if prediction_type == "v_prediction":
        return a.sqrt() * x_t - (1 - a).sqrt() * model_out
    raise ValueError(f"unsupported prediction_type {prediction_type!r}")


def gaussian_log_prob(x: torch.Tensor, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    """Mean over all non-batch dims of log N(x; mean, std²): (B,)."""
    lp = -((x.detach() - mean) ** 2) / (2 * std**2) - torch.log(std) - _HALF_LOG_2PI
    return lp.mean(dim=tuple(range(1, lp.dim())))


def _draw_and_score(mean, std, x0_pred, prev_sample, noise) -> StepOutput:
    """x = mean + std z (unless prev_sample is given, then it is scored), and its log-prob."""
    if prev_sample is None:
        prev_sample = mean + std * (torch.randn_like(mean) if noise is None else noise)
    return StepOutput(prev_sample, gaussian_log_prob(prev_sample, mean, std), mean, std, x0_pred)


def ddim_step_with_logprob(
    eps: torch.Tensor,
    x_t: torch.Tensor,
    alpha_bar_t: torch.Tensor | float,
    alpha_bar_prev: torch.Tensor | float,
    eta: float,
    prev_sample: torch.Tensor | None = None,
    noise: torch.Tensor | None = None,
    x0_pred: torch.Tensor | None = None,
) -> StepOutput:
    """One DDIM step with eta > 0. Samples x_prev (or scores a given one).

    1. x̂0 = (x_t − √(1−ᾱ_t) ε̂) / √ᾱ_t                                   (DDIM eq. 12)
       (or the x̂0 given, which a v-prediction yields even where ᾱ_t = 0)
    2. σ_t = η √((1−ᾱ_prev)/(1−ᾱ_t)) √(1 − ᾱ_t/ᾱ_prev)                    (DDIM eq. 16)
    3. μ = √ᾱ_prev x̂0 + √(1 − ᾱ_prev − σ_t²) ε̂                          (DDIM eq. 12)
    4. x_prev = μ + σ_t z, z ~ N(0, I)      (skipped when prev_sample is given)
    5. log π(x_prev | x_t) = mean_d [−(x_prev − μ)²/(2σ_t²) − log σ_t − ½ log 2π]
    """
    if eta <= 0:
        raise ValueError("eta must be > 0 for a stochastic step with a log-prob")
    a_t, a_prev = _rows(alpha_bar_t, x_t), _rows(alpha_bar_prev, x_t)
    if x0_pred is None:
        x0_pred = (x_t - (1 - a_t).sqrt() * eps) / a_t.sqrt()                # 1
    var = (1 - a_prev) / (1 - a_t) * (1 - a_t / a_prev)
    std = eta * var.clamp_min(0).sqrt()                                       # 2
    mean = a_prev.sqrt() * x0_pred + (1 - a_prev - std**2).clamp_min(0).sqrt() * eps  # 3
    return _draw_and_score(mean, std, x0_pred, prev_sample, noise)            # 4, 5


def ddim_step_deterministic(eps: torch.Tensor, x_t: torch.Tensor, alpha_bar_t, alpha_bar_prev,
                            x0_pred: torch.Tensor | None = None) -> StepOutput:
    """The DDIM step with η = 0 (no noise, so no log-prob): steps 1 and 3 above with σ_t = 0,

        x_prev = √ᾱ_prev x̂0 + √(1 − ᾱ_prev) ε̂

    The sampler runs it outside the window (window.placement = sampler). log_prob is 0
    and std 0: a deterministic step is never trained (Rollout.stochastic says which are)."""
    a_t, a_prev = _rows(alpha_bar_t, x_t), _rows(alpha_bar_prev, x_t)
    if x0_pred is None:
        x0_pred = (x_t - (1 - a_t).sqrt() * eps) / a_t.sqrt()
    x_prev = a_prev.sqrt() * x0_pred + (1 - a_prev).sqrt() * eps
    return _deterministic(x_prev, x0_pred)


def _deterministic(x_prev: torch.Tensor, x0_pred: torch.Tensor) -> StepOutput:
    b = x_prev.shape[0]
    return StepOutput(x_prev, torch.zeros(b, dtype=x_prev.dtype, device=x_prev.device), x_prev,
                      torch.zeros(b, *([1] * (x_prev.dim() - 1)), dtype=x_prev.dtype, device=x_prev.device), x0_pred)


# ---- flow matching (SD3-class rectified flow) -------------------------------------
#
# Notation (docs/adascope.md, "Stochastic step"; Flow-GRPO's SDE form):
#     x       latent at noise level σ, x = (1−σ) x0 + σ ε           (B, C, H, W)
#     v̂       the model's velocity prediction at (x, σ), v ≈ ε − x0   (B, C, H, W)
#     σ → σ_next, dt = σ_next − σ < 0 (σ decreases toward 0)
#     a       noise level of the SDE; a = 0 is the deterministic (ODE / Euler) step
def flow_alpha_bar(sigma: torch.Tensor) -> torch.Tensor:
    """The ᾱ a DDPM latent with the same signal-to-noise ratio as x_σ would have:
    ᾱ(σ) = (1−σ)² / ((1−σ)² + σ²). Lets the schedule prior serve flow models."""
    return (1 - sigma) ** 2 / ((1 - sigma) ** 2 + sigma**2)


def flow_sde_step_with_logprob(
    v: torch.Tensor,
    x: torch.Tensor,
    sigma: torch.Tensor | float,
    sigma_next: torch.Tensor | float,
    noise_level: float,
    sigma_cap: float | None = None,
    prev_sample: torch.Tensor | None = None,
    noise: torch.Tensor | None = None,
) -> StepOutput:
    """One flow-matching step as a Gaussian policy. Samples x_next (or scores a given one).

    1. x̂0 = x − σ v̂
    2. s = a √(σ / (1−σ))              (σ = 1 would divide by zero: 1−σ uses σ_cap there)
    3. μ = x (1 + s² dt / (2σ)) + v̂ (1 + s² (1−σ) / (2σ)) dt
    4. std = s √(−dt)
    5. x_next = μ + std z, z ~ N(0, I)    (skipped when prev_sample is given)
    6. log π(x_next | x) = mean_d [−(x_next − μ)²/(2 std²) − log std − ½ log 2π]
    With a = 0, step 3 is the Euler step x + v̂ dt and there is no log-prob.
    """
    if noise_level <= 0:
        raise ValueError("noise_level must be > 0 for a stochastic step with a log-prob")
    s_, s_next = _rows(sigma, x), _rows(sigma_next, x)
    dt = s_next - s_
    x0_pred = x - s_ * v                                                       # 1
    one_minus = 1 - (s_.clamp_max(sigma_cap) if sigma_cap is not None else s_)
    s = noise_level * (s_ / one_minus).sqrt()                                  # 2
    mean = x * (1 + s**2 * dt / (2 * s_)) + v * (1 + s**2 * (1 - s_) / (2 * s_)) * dt  # 3
    std = s * (-dt).sqrt()                                                     # 4
    return _draw_and_score(mean, std, x0_pred, prev_sample, noise)             # 5, 6


def flow_ode_step(v: torch.Tensor, x: torch.Tensor, sigma, sigma_next) -> StepOutput:
    """The deterministic (a = 0, Euler) flow step: x_next = x + v̂ (σ_next − σ), x̂0 = x − σ v̂.
    No log-prob (0) and std 0, as `ddim_step_deterministic`."""
    s_, s_next = _rows(sigma, x), _rows(sigma_next, x)
    return _deterministic(x + v * (s_next - s_), x - s_ * v)

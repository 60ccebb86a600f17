"""The diffusion model as a policy: shared by the sampler and the learner so the two
compute the same step distribution (the ratio-1 invariant depends on it).

Two families, one interface (`schedule`, `uses_cfg`, `forward_rows`, `step`):
    DiffusionPolicy  UNet + DDIM with eta (SD1.5, SDXL-class): ε/v prediction; SDXL's
                     UNet also takes pooled text and the six size/crop ids
    FlowPolicy       SD3-class transformer + FlowMatchEuler: velocity, the SDE step of
                     core.sde.flow_sde_step_with_logprob with noise level a = eta
Conditioning is (embeds (B, L, D), pooled (B, P) or None): SDXL and SD3 also need pooled text.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from .adapter_gate import gated
from ..core.sde import (StepOutput, ddim_step_deterministic, ddim_step_with_logprob, flow_alpha_bar, flow_ode_step,
                        flow_sde_step_with_logprob, to_epsilon, to_x0)


@dataclass(frozen=True)
class Schedule:
    timesteps: torch.Tensor       # (K,) int, noisiest first
    alpha_bars: torch.Tensor      # (K,) ᾱ at each step's timestep (flow: the equivalent ᾱ(σ))
    alpha_bars_prev: torch.Tensor  # (K,) ᾱ at the next (less noisy) timestep
    sigmas: torch.Tensor | None = None  # (K+1,) flow: σ_0 = 1 ... σ_K = 0


def ddim_schedule(scheduler, num_steps: int) -> Schedule:
    """Timesteps and ᾱ values DDIMScheduler uses for `num_steps` steps."""
    scheduler.set_timesteps(num_steps)
    ts = scheduler.timesteps.clone().long()
    ac = scheduler.alphas_cumprod.float()
    stride = scheduler.config.num_train_timesteps // num_steps
    prev = ts - stride
    final = torch.as_tensor(float(scheduler.final_alpha_cumprod))
    a_prev = torch.where(prev >= 0, ac[prev.clamp_min(0)], final)
    return Schedule(ts, ac[ts], a_prev)


class DiffusionPolicy:
    """ε̂(x_t, t, c) with classifier-free guidance, and the DDIM-with-eta step."""

    def __init__(self, unet, scheduler, sampling_cfg, dtype: torch.dtype = torch.float32, vae_scale: int = 8,
                 adapter_steps: tuple[int, int] | None = None):
        self.unet = unet
        self.adapter_steps = adapter_steps  # [lo, hi): where the LoRA acts (None: every step)
        self.dtype = dtype  # the denoiser's compute dtype; the step math stays float32
        self.cfg = sampling_cfg
        self.text_time = unet.config.addition_embed_type == "text_time"  # SDXL-class conditioning
        self.vae_scale = vae_scale  # pixels per latent cell, for SDXL's size ids
        self.prediction_type = scheduler.config.prediction_type
        self.schedule = ddim_schedule(scheduler, sampling_cfg.num_steps)
        if self.prediction_type == "epsilon" and bool((self.schedule.alpha_bars <= 0).any()):
            raise ValueError("scheduler: a zero-terminal-SNR schedule (rescale_betas_zero_snr) needs "
                             "prediction_type 'v_prediction'; an ε-prediction has no x̂0 where ᾱ = 0")
        self.forward_rows = 0  # rows pushed through the UNet: the cost counter

    @property
    def uses_cfg(self) -> bool:
        return self.cfg.guidance_scale > 1.0

    def added_cond(self, x: torch.Tensor, pooled: torch.Tensor | None) -> dict:
        """SDXL's added conditioning for rows x (B, C, h, w): pooled text (B, P) and
        time ids (B, 6) = (original H, W, crop top, left, target H, W) in pixels; the
        policy renders uncropped at the trained size, so ids = (H, W, 0, 0, H, W)."""
        if not self.text_time:
            return {}
        h, w = x.shape[-2] * self.vae_scale, x.shape[-1] * self.vae_scale
        ids = torch.tensor([h, w, 0, 0, h, w], dtype=self.dtype, device=x.device).expand(x.shape[0], 6)
        return {"added_cond_kwargs": {"text_embeds": pooled.to(self.dtype), "time_ids": ids}}

    def predict_eps(self, x_t: torch.Tensor, t: torch.Tensor, cond: torch.Tensor,
                    uncond: torch.Tensor | None, alpha_bar_t: torch.Tensor,
                    pooled: torch.Tensor | None = None, uncond_pooled: torch.Tensor | None = None) -> torch.Tensor:
        """ε̂ with guidance; arguments as in `predict`."""
        return to_epsilon(self.predict(x_t, t, cond, uncond, pooled, uncond_pooled), x_t, alpha_bar_t,
                          self.prediction_type)

    def predict(self, x_t: torch.Tensor, t: torch.Tensor, cond: torch.Tensor, uncond: torch.Tensor | None,
                pooled: torch.Tensor | None = None, uncond_pooled: torch.Tensor | None = None,
                guided: bool = True) -> torch.Tensor:
        """The guided model output (ε̂ or v̂, as the scheduler's prediction_type says; guidance
        is linear in it, so guiding v̂ equals guiding ε̂). x_t: (B, C, H, W); t: (B,);
        cond: (B, L, D); uncond: (B, L, D) or None; pooled / uncond_pooled: (B, P), SDXL-class only.
        guided=False: the conditional output alone (no guidance), what fine-tuning fits."""
        d = self.dtype
        if self.uses_cfg and guided:
            x2 = torch.cat([x_t, x_t])
            extra = self.added_cond(x2, torch.cat([uncond_pooled, pooled]) if self.text_time else None)
            out = self.unet(x2.to(d), torch.cat([t, t]), encoder_hidden_states=torch.cat([uncond, cond]).to(d),
                            **extra).sample.float()
            self.forward_rows += 2 * x_t.shape[0]
            out_u, out_c = out.chunk(2)
            return out_u + self.cfg.guidance_scale * (out_c - out_u)
        out = self.unet(x_t.to(d), t, encoder_hidden_states=cond.to(d), **self.added_cond(x_t, pooled)).sample.float()
        self.forward_rows += x_t.shape[0]
        return out

    def step(self, x_t: torch.Tensor, steps: torch.Tensor, cond: torch.Tensor,
             uncond: torch.Tensor | None, prev_sample: torch.Tensor | None = None,
             generator: torch.Generator | None = None, pooled=None, uncond_pooled=None,
             stochastic: bool = True) -> StepOutput:
        """One stochastic step for rows at step indices `steps` (B,), sampling
        x_prev (or scoring the given prev_sample); with stochastic=False the η = 0 DDIM
        step (no noise drawn, log-prob 0). `pooled` is used by SDXL-class UNets."""
        s = self.schedule
        idx = steps.cpu()
        t = s.timesteps[idx].to(x_t.device)
        a_t = s.alpha_bars[idx].to(x_t.device)
        a_prev = s.alpha_bars_prev[idx].to(x_t.device)
        args = (x_t, t, cond, uncond, pooled, uncond_pooled)
        out = gated(self.unet, self.adapter_steps, idx, lambda r: self.predict(*_rows_of(r, args)))
        eps = to_epsilon(out, x_t, a_t, self.prediction_type)
        x0 = to_x0(out, x_t, a_t, self.prediction_type)
        if not stochastic:
            return ddim_step_deterministic(eps, x_t, a_t, a_prev, x0)
        noise = None if prev_sample is not None else _noise(x_t, generator)
        return ddim_step_with_logprob(eps, x_t, a_t, a_prev, self.cfg.eta, prev_sample, noise, x0)


def _rows_of(rows, tensors: tuple) -> list:
    """Each tensor's rows (None stays None): rows slice(None) (every row, no copy) or a
    (B,) bool mask."""
    pick = lambda t: t[rows if isinstance(rows, slice) else rows.to(t.device)]  # noqa: E731
    return [None if t is None else pick(t) for t in tensors]


def _noise(like: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    return torch.randn(like.shape, generator=generator,
                       device=generator.device if generator else "cpu").to(like.device, like.dtype)


def flow_schedule(scheduler, num_steps: int) -> Schedule:
    """σ's and timesteps FlowMatchEulerDiscreteScheduler uses for `num_steps` steps."""
    scheduler.set_timesteps(num_steps)
    sig = scheduler.sigmas.float()                                   # (K+1,), last 0
    return Schedule(scheduler.timesteps.float().clone(), flow_alpha_bar(sig[:-1]), flow_alpha_bar(sig[1:]), sig)


class FlowPolicy:
    """v̂(x, σ, c) of an SD3-class transformer with classifier-free guidance, and the
    flow-matching SDE step (noise level a = sampling.eta)."""

    def __init__(self, transformer, scheduler, sampling_cfg, dtype: torch.dtype = torch.float32,
                 adapter_steps: tuple[int, int] | None = None):
        self.denoiser = transformer
        self.adapter_steps = adapter_steps  # [lo, hi): where the LoRA acts (None: every step)
        self.dtype = dtype
        self.cfg = sampling_cfg
        self.schedule = flow_schedule(scheduler, sampling_cfg.num_steps)
        self.sigma_cap = float(self.schedule.sigmas[1])  # stands in for σ = 1 in 1/(1−σ)
        self.forward_rows = 0

    @property
    def uses_cfg(self) -> bool:
        return self.cfg.guidance_scale > 1.0

    def predict_velocity(self, x: torch.Tensor, t: torch.Tensor, cond, uncond, pooled, uncond_pooled) -> torch.Tensor:
        """x: (B, C, H, W); t: (B,) in [0, 1000]; cond/uncond: (B, L, D); pooled: (B, P)."""
        d = self.dtype
        if self.uses_cfg:
            out = self.denoiser(hidden_states=torch.cat([x, x]).to(d), timestep=torch.cat([t, t]),
                                encoder_hidden_states=torch.cat([uncond, cond]).to(d),
                                pooled_projections=torch.cat([uncond_pooled, pooled]).to(d)).sample.float()
            self.forward_rows += 2 * x.shape[0]
            out_u, out_c = out.chunk(2)
            return out_u + self.cfg.guidance_scale * (out_c - out_u)
        self.forward_rows += x.shape[0]
        return self.denoiser(hidden_states=x.to(d), timestep=t, encoder_hidden_states=cond.to(d),
                             pooled_projections=pooled.to(d)).sample.float()

    def step(self, x_t: torch.Tensor, steps: torch.Tensor, cond: torch.Tensor, uncond: torch.Tensor | None,
             prev_sample: torch.Tensor | None = None, generator: torch.Generator | None = None,
             pooled=None, uncond_pooled=None, stochastic: bool = True) -> StepOutput:
        """The flow SDE step at noise level sampling.eta; with stochastic=False the Euler
        (ODE) step, no noise drawn, log-prob 0."""
        s = self.schedule
        idx = steps.cpu()
        sigma, sigma_next = s.sigmas[idx].to(x_t.device), s.sigmas[idx + 1].to(x_t.device)
        t = s.timesteps[idx].to(x_t.device)
        args = (x_t, t, cond, uncond, pooled, uncond_pooled)
        v = gated(self.denoiser, self.adapter_steps, idx, lambda r: self.predict_velocity(*_rows_of(r, args)))
        if not stochastic:
            return flow_ode_step(v, x_t, sigma, sigma_next)
        noise = None if prev_sample is not None else _noise(x_t, generator)
        return flow_sde_step_with_logprob(v, x_t, sigma, sigma_next, self.cfg.eta, self.sigma_cap, prev_sample, noise)


def denoiser_name(pipe) -> str:
    """The pipeline component the policy trains: 'unet', or 'transformer' (SD3-class)."""
    return "transformer" if getattr(pipe, "transformer", None) is not None else "unet"


def denoiser_of(pipe):
    return getattr(pipe, denoiser_name(pipe))


def make_policy(pipe, denoiser, sampling_cfg, dtype: torch.dtype = torch.float32,
                adapter_steps: tuple[int, int] | None = None):
    """adapter_steps [lo, hi): the steps at which the denoiser's LoRA acts (model.adapter_steps)."""
    if "FlowMatch" in type(pipe.scheduler).__name__:
        return FlowPolicy(denoiser, pipe.scheduler, sampling_cfg, dtype, adapter_steps)
    return DiffusionPolicy(denoiser, pipe.scheduler, sampling_cfg, dtype, getattr(pipe, "vae_scale_factor", 8),
                           adapter_steps)


@torch.no_grad()
def encode_prompts(pipe, prompts: list[str]) -> tuple[torch.Tensor, torch.Tensor | None]:
    """(embeds (B, L, D), pooled (B, P) or None) with the pipeline's own tokenizers and
    encoders: one CLIP for SD1.5; SDXL's two CLIPs (penultimate hidden states side by
    side, pooled from the second); SD3's two CLIPs (+ T5 when it has one) and pooled."""
    if hasattr(pipe, "text_encoder_3"):
        embeds, _, pooled, _ = pipe.encode_prompt(list(prompts), None, None, device=pipe.text_encoder.device,
                                                  do_classifier_free_guidance=False)
        return embeds, pooled
    if hasattr(pipe, "text_encoder_2"):
        embeds, _, pooled, _ = pipe.encode_prompt(list(prompts), device=pipe.text_encoder_2.device,
                                                  do_classifier_free_guidance=False)
        return embeds, pooled
    tok = pipe.tokenizer(prompts, padding="max_length", max_length=pipe.tokenizer.model_max_length,
                         truncation=True, return_tensors="pt")
    return pipe.text_encoder(tok.input_ids.to(pipe.text_encoder.device))[0], None


def unconditional(pipe) -> tuple[torch.Tensor, torch.Tensor | None]:
    """(embeds (1, L, D), pooled (1, P) or None) for CFG's unconditional branch: the
    empty prompt encoded, or zeros where the pipeline says so (SDXL's
    force_zeros_for_empty_prompt), as its own __call__ does with no negative prompt."""
    embeds, pooled = encode_prompts(pipe, [""])
    if getattr(pipe.config, "force_zeros_for_empty_prompt", False):
        return torch.zeros_like(embeds), None if pooled is None else torch.zeros_like(pooled)
    return embeds, pooled

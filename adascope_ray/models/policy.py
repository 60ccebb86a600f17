"""The diffusion model as a policy: shared by the sampler and the learner so the two
compute the same step distribution (the ratio-1 invariant depends on it)."""
from __future__ import annotations

from dataclasses import dataclass

import torch

from ..core.sde import StepOutput, ddim_step_with_logprob, to_epsilon


@dataclass(frozen=True)
class Schedule:
    timesteps: torch.Tensor       # (K,) int, noisiest first
    alpha_bars: torch.Tensor      # (K,) ᾱ at each step's timestep
    alpha_bars_prev: torch.Tensor  # (K,) ᾱ at the next (less noisy) timestep


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

    def __init__(self, unet, scheduler, sampling_cfg):
        self.unet = unet
        self.cfg = sampling_cfg
        self.prediction_type = scheduler.config.prediction_type
        self.schedule = ddim_schedule(scheduler, sampling_cfg.num_steps)
        self.forward_rows = 0  # rows pushed through the UNet: the cost counter

    @property
    def uses_cfg(self) -> bool:
        return self.cfg.guidance_scale > 1.0

    def predict_eps(self, x_t: torch.Tensor, t: torch.Tensor, cond: torch.Tensor,
                    uncond: torch.Tensor | None, alpha_bar_t: torch.Tensor) -> torch.Tensor:
        """x_t: (B, C, H, W); t: (B,); cond: (B, L, D); uncond: (B, L, D) or None."""
        if self.uses_cfg:
            out = self.unet(torch.cat([x_t, x_t]), torch.cat([t, t]),
                            encoder_hidden_states=torch.cat([uncond, cond])).sample
            self.forward_rows += 2 * x_t.shape[0]
            out_u, out_c = out.chunk(2)
            out = out_u + self.cfg.guidance_scale * (out_c - out_u)
        else:
            out = self.unet(x_t, t, encoder_hidden_states=cond).sample
            self.forward_rows += x_t.shape[0]
        return to_epsilon(out, x_t, alpha_bar_t, self.prediction_type)

    def step(self, x_t: torch.Tensor, steps: torch.Tensor, cond: torch.Tensor,
             uncond: torch.Tensor | None, prev_sample: torch.Tensor | None = None,
             generator: torch.Generator | None = None) -> StepOutput:
        """One stochastic step for rows at step indices `steps` (B,), sampling
        x_prev (or scoring the given prev_sample)."""
        s = self.schedule
        idx = steps.cpu()
        t = s.timesteps[idx].to(x_t.device)
        a_t = s.alpha_bars[idx].to(x_t.device)
        a_prev = s.alpha_bars_prev[idx].to(x_t.device)
        eps = self.predict_eps(x_t, t, cond, uncond, a_t)
        noise = None
        if prev_sample is None:
            noise = torch.randn(x_t.shape, generator=generator, device=generator.device if generator else "cpu").to(x_t.device, x_t.dtype)
        return ddim_step_with_logprob(eps, x_t, a_t, a_prev, self.cfg.eta, prev_sample, noise)


@torch.no_grad()
def encode_prompts(pipe, prompts: list[str]) -> torch.Tensor:
    """CLIP text embeddings (B, L, D) with the pipeline's own tokenizer/encoder."""
    tok = pipe.tokenizer(prompts, padding="max_length", max_length=pipe.tokenizer.model_max_length,
                         truncation=True, return_tensors="pt")
    return pipe.text_encoder(tok.input_ids.to(pipe.text_encoder.device))[0]

"""Train the shapes world's base model: a tiny Stable-Diffusion-class pipeline (the
builtin tiny architecture: AutoencoderKL, UNet2DConditionModel, CLIPTextModel, DDIM)
fitted to procedurally generated scenes and their captions.

    python -m adascope_ray.world.train --out DIR [--vae-steps N --unet-steps N]

Deterministic for a given thread count (fixed seeds, fixed data, fixed step counts).
Stage 1 fits the VAE (reconstruction + a small KL term); stage 2 sets the latent
scaling factor to 1/std of the latents and fits the UNet and text encoder together on
the v-prediction loss under a zero-terminal-SNR schedule (ᾱ_T = 0, "trailing"
timesteps, so sampling starts from pure noise at t = 999 and the first step must read the
caption, not x_T: with SD's own schedule sampling starts at ᾱ = 0.0102 and x_T's channel
means decided the background), captions dropped to "" 10 % of the time so that classifier-free
guidance works; the UNet weights used are an exponential moving average. The folder
is written with save_pretrained in float16 (loaded back at the dtype asked for).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

from .scenes import dataset


def _progress(stage: str, step: int, total: int, loss: float, t0: float) -> None:
    if step % 50 == 0 or step == total:
        el = time.perf_counter() - t0
        eta = el / max(step, 1) * (total - step)
        print(f"{stage} {step}/{total} loss {loss:.4f} elapsed {el / 60:.1f} min, eta {eta / 60:.1f} min", flush=True)


def train_vae(vae, images: torch.Tensor, steps: int, batch: int, gen: torch.Generator) -> None:
    """images: (N, 3, H, W) in [-1, 1]."""
    opt = torch.optim.AdamW(vae.parameters(), lr=1e-3, weight_decay=0.0)
    vae.train()
    t0 = time.perf_counter()
    for step in range(1, steps + 1):
        x = images[torch.randint(0, len(images), (batch,), generator=gen)]
        post = vae.encode(x).latent_dist
        z = post.mean + post.std * torch.randn(post.mean.shape, generator=gen)
        loss = ((vae.decode(z).sample - x) ** 2).mean() + 1e-6 * post.kl().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        _progress("vae", step, steps, loss.item(), t0)
    vae.eval()


@torch.no_grad()
def encode_all(vae, images: torch.Tensor, chunk: int = 256) -> torch.Tensor:
    return torch.cat([vae.encode(images[i : i + chunk]).latent_dist.mean for i in range(0, len(images), chunk)])


def train_denoiser(pipe, latents: torch.Tensor, captions: list[str], steps: int, batch: int,
                   gen: torch.Generator, ema_decay: float = 0.999) -> None:
    """ε- or v-prediction loss (as the scheduler says) on latents (N, 4, h, w), the text
    encoder trained with the UNet. v = √ᾱ ε − √(1−ᾱ) x0."""
    unet, te, sched = pipe.unet, pipe.text_encoder, pipe.scheduler
    ids = pipe.tokenizer(captions + [""], padding="max_length", max_length=pipe.tokenizer.model_max_length,
                         truncation=True, return_tensors="pt").input_ids
    empty = ids[-1]
    ids = ids[:-1]
    params = list(unet.parameters()) + list(te.parameters())
    opt = torch.optim.AdamW(params, lr=5e-4, weight_decay=0.0)
    warm = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / 200))
    ema = {n: p.detach().clone() for n, p in unet.named_parameters()}
    unet.train()
    te.train()
    ac = sched.alphas_cumprod
    t0 = time.perf_counter()
    for step in range(1, steps + 1):
        idx = torch.randint(0, len(latents), (batch,), generator=gen)
        x0, tok = latents[idx], ids[idx].clone()
        tok[torch.rand(batch, generator=gen) < 0.1] = empty          # caption dropout for CFG
        t = torch.randint(0, len(ac), (batch,), generator=gen)
        eps = torch.randn(x0.shape, generator=gen)
        a = ac[t].view(-1, 1, 1, 1)
        x_t = a.sqrt() * x0 + (1 - a).sqrt() * eps                   # q(x_t | x_0)
        target = eps if sched.config.prediction_type == "epsilon" else a.sqrt() * eps - (1 - a).sqrt() * x0
        loss = ((unet(x_t, t, encoder_hidden_states=te(tok)[0]).sample - target) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        warm.step()
        with torch.no_grad():
            for n, p in unet.named_parameters():
                ema[n].lerp_(p, 1 - ema_decay)
        _progress("unet", step, steps, loss.item(), t0)
    with torch.no_grad():
        for n, p in unet.named_parameters():
            p.copy_(ema[n])
    unet.eval()
    te.eval()


def world_scheduler():
    """DDIM over SD's scaled-linear betas rescaled to zero terminal SNR, v-prediction,
    trailing timestep spacing (Lin et al. 2024, "Common diffusion noise schedules and
    sample steps are flawed")."""
    from diffusers import DDIMScheduler

    return DDIMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", clip_sample=False,
                         set_alpha_to_one=False, prediction_type="v_prediction", rescale_betas_zero_snr=True,
                         timestep_spacing="trailing", steps_offset=1)  # the offset is unused with trailing spacing


def train(out: Path, seed: int = 0, n_images: int = 20000, size: int = 32, vae_steps: int = 600,
          unet_steps: int = 3500, batch: int = 64) -> dict:
    from ..models.tiny import build_tiny_pipeline

    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    t0 = time.perf_counter()
    images, captions, _ = dataset(n_images, seed=seed, size=size)
    x = torch.from_numpy(images).permute(0, 3, 1, 2).float() / 127.5 - 1           # (N, 3, H, W)
    pipe = build_tiny_pipeline(seed, size, out.parent / f".{out.name}-tokenizer")
    pipe.scheduler = world_scheduler()
    train_vae(pipe.vae, x, vae_steps, batch, gen)
    lat = encode_all(pipe.vae, x)
    scale = float(1.0 / lat.std())
    pipe.vae.register_to_config(scaling_factor=scale)
    train_denoiser(pipe, lat * scale, captions, unet_steps, batch, gen)
    pipe.to(torch.float16).save_pretrained(out)
    info = {"seed": seed, "images": n_images, "size": size, "vae_steps": vae_steps, "unet_steps": unet_steps,
            "batch": batch, "scaling_factor": scale, "threads": torch.get_num_threads(),
            "train_minutes": round((time.perf_counter() - t0) / 60, 1)}
    (out / "training.json").write_text(json.dumps(info, indent=1))
    return info


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True, type=Path)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--images", type=int, default=20000)
    ap.add_argument("--vae-steps", type=int, default=600)
    ap.add_argument("--unet-steps", type=int, default=3500)
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)
    print(json.dumps(train(a.out, a.seed, a.images, 32, a.vae_steps, a.unet_steps)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

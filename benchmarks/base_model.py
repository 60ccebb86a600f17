"""Where does the shapes world's base model have room? Per-check pass rates of the base
policy on validation captions at several guidance scales, which background it draws
for each one asked for, and the same checks on the world's own renders after a VAE
round trip (what the latent space can hold at all), and what decides the background
brightness: the starting noise's channel means or the caption (R² of each).

    .venv/bin/python benchmarks/base_model.py [--model builtin:shapes] [--prompts 64]
        [--seeds 0,1] [--guidance 4.5,2.0,8.0] [--tag base_model]

Writes benchmarks/results/learning/<tag>.json with machine and commit.
"""
from __future__ import annotations

import argparse
from collections import Counter

import numpy as np

from common import ROOT, write_result

from adascope_ray.rewards.scene_check import _BG_COLS, BACKGROUNDS, CHECKS, SceneCheck, parse_prompt  # noqa: E402
from adascope_ray.world.evaluate import evaluate  # noqa: E402
from adascope_ray.world.scenes import dataset  # noqa: E402
from adascope_ray.world.splits import split_captions  # noqa: E402


def drawn_background(image: np.ndarray) -> str:
    """The background colour nearest the image's median pixel."""
    med = np.median(image.reshape(-1, 3).astype(np.float32), axis=0)
    return list(BACKGROUNDS)[int(np.linalg.norm(_BG_COLS - med, axis=1).argmin())]


def vae_round_trip(model: str, n: int, seed: int = 777) -> dict:
    """scene_check of n rendered scenes after encode → decode with the model's VAE."""
    import torch

    from adascope_ray.config import config_from_dict
    from adascope_ray.models.loader import load_pipeline

    pipe = load_pipeline(config_from_dict({"data": {"prompts": ["x"]}, "model": {"path": model}}).model)
    images, captions, _ = dataset(n, seed=seed, size=32)
    x = torch.from_numpy(images).permute(0, 3, 1, 2).float() / 127.5 - 1           # (n, 3, H, W)
    with torch.no_grad():
        rec = pipe.vae.decode(pipe.vae.encode(x).latent_dist.mean).sample
    rec = ((rec.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()
    scores, parts = SceneCheck().breakdown(rec, captions)
    return {"reward": float(scores.mean()), **{k: float(np.nanmean(parts[k])) for k in CHECKS}}


def brightness_r2(model: str, prompts: list[str], seeds: list[int], guidance: float = 4.5) -> dict:
    """R² of the drawn background's brightness (median pixel) regressed on x_T's
    per-channel means (C numbers) and, apart, on the asked background (one-hot); plus
    the schedule's first step and its ᾱ (what the model reads of x_T as signal)."""
    from adascope_ray.config import config_from_dict
    from adascope_ray.rollout import Sampler
    from adascope_ray.types import PromptBatch
    from adascope_ray.world.evaluate import HELDOUT_SEED

    cfg = config_from_dict({"data": {"prompts": prompts}, "model": {"path": model},
                            "sampling": {"num_steps": 16, "guidance_scale": guidance}, "sampler": {"batch_size": 32}})
    sampler = Sampler(cfg.model, cfg.sampling, cfg.sampler)
    means, bright = [], []
    for seed in seeds:
        r = sampler.sample(PromptBatch(prompts=prompts, group_ids=np.arange(len(prompts)), seed=HELDOUT_SEED + seed,
                                       policy_version=sampler.version))
        means.append(r.latents[:, 0].mean(axis=(2, 3)))                              # (n, C)
        bright.append(np.median(r.images.reshape(len(prompts), -1, 3), axis=1).mean(1))  # (n,)
    y = np.concatenate(bright)
    asked = [parse_prompt(p).background for p in prompts] * len(seeds)

    def r2(x: np.ndarray) -> float:
        coef, *_ = np.linalg.lstsq(x, y, rcond=None)
        return float(1 - ((y - x @ coef) ** 2).sum() / ((y - y.mean()) ** 2).sum())

    x_t = np.c_[np.concatenate(means), np.ones(len(y))]
    words = np.array([[a == b for b in BACKGROUNDS] for a in asked], float)
    sched = sampler.policy.schedule
    return {"r2_x_T_channel_means": r2(x_t), "r2_asked_background": r2(words), "samples": len(y),
            "first_timestep": int(sched.timesteps[0]), "first_alpha_bar": float(sched.alpha_bars[0])}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="builtin:shapes")
    ap.add_argument("--prompts", type=int, default=64)
    ap.add_argument("--seeds", default="0,1")
    ap.add_argument("--guidance", default="4.5,2.0,8.0")
    ap.add_argument("--tag", default="base_model")
    a = ap.parse_args()
    prompts = split_captions("validation", a.prompts, seed=0)
    seeds = [int(s) for s in a.seeds.split(",")]
    rows = []
    for g in [float(x) for x in a.guidance.split(",")]:
        outs = [evaluate(a.model, prompts, 1, seed=s, guidance_scale=g) for s in seeds]
        confusion = Counter((parse_prompt(p).background, drawn_background(im))
                            for o in outs for im, p in zip(o["images"], o["prompts"]))
        row = {"guidance": g, "samples": len(prompts) * len(seeds),
               **{k: float(np.mean([o[k] for o in outs])) for k in outs[0] if k.startswith(("reward", "check/"))},
               "background_asked_drawn": {f"{asked}->{drawn}": n for (asked, drawn), n in sorted(confusion.items())}}
        rows.append(row)
        checks = "  ".join(f"{k[6:]} {row[k]:.2f}" for k in row if k.startswith("check/"))
        print(f"guidance {g:>4}: reward {row['reward_mean']:.3f}  {checks}", flush=True)
        print(f"    background asked -> drawn: {row['background_asked_drawn']}", flush=True)
    br = brightness_r2(a.model, prompts, seeds)
    print(f"background brightness: R² {br['r2_x_T_channel_means']:.2f} on x_T's channel means, "
          f"{br['r2_asked_background']:.2f} on the asked background ({br['samples']} samples; first step t = "
          f"{br['first_timestep']}, ᾱ = {br['first_alpha_bar']:.4f})", flush=True)
    rt = vae_round_trip(a.model, 96)
    print("VAE round trip of 96 rendered scenes: " + "  ".join(f"{k} {v:.3f}" for k, v in rt.items()))
    path = write_result(a.tag, {"model": a.model, "prompts": a.prompts, "seeds": seeds, "by_guidance": rows,
                                "brightness": br, "vae_round_trip": rt}, ROOT / "benchmarks" / "results" / "learning")
    print(f"wrote {path.relative_to(ROOT)}")


if __name__ == "__main__":
    main()

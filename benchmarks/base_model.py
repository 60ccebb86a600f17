"""Where does the shapes world's base model have room? Per-check pass rates of the base
policy on validation captions at several guidance scales, which background it draws
for each one asked for, and the same checks on the world's own renders after a VAE
round trip (what the latent space can hold at all).

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
    rt = vae_round_trip(a.model, 96)
    print("VAE round trip of 96 rendered scenes: " + "  ".join(f"{k} {v:.3f}" for k, v in rt.items()))
    path = write_result(a.tag, {"model": a.model, "prompts": a.prompts, "seeds": seeds, "by_guidance": rows,
                                "vae_round_trip": rt}, ROOT / "benchmarks" / "results" / "learning")
    print(f"wrote {path.relative_to(ROOT)}")


if __name__ == "__main__":
    main()

"""How well a model draws the shapes world: sample held-out prompts with the project's
own Sampler (the policy RL trains, no Ray) and score them with scene_check.

    python -m adascope_ray.world.evaluate [--model builtin:shapes] [--prompts 64] [--grid out.png]
"""
from __future__ import annotations

import argparse
import json
import sys

import numpy as np

from .scenes import dataset

HELDOUT_SEED = 10_000  # the training scenes come from seed 0


def heldout_prompts(n: int = 64) -> list[str]:
    """Captions of n scenes from a seed the training set does not use."""
    return dataset(n, seed=HELDOUT_SEED, size=8)[1]


def score_sampler(sampler, prompts: list[str], seed: int) -> dict:
    """Sample the prompts with the sampler's current weights and noise seed, score them
    with scene_check: mean reward, per-check means ("check/<name>"), images."""
    from ..rewards.scene_check import CHECKS, SceneCheck
    from ..types import PromptBatch

    rollout = sampler.sample(PromptBatch(prompts=prompts, group_ids=np.arange(len(prompts)), seed=seed,
                                         policy_version=sampler.version))
    scores, parts = SceneCheck().breakdown(rollout.images, prompts)
    return {"reward_mean": float(scores.mean()), "samples": len(prompts),
            **{f"check/{k}": float(np.nanmean(parts[k])) for k in CHECKS}, "images": rollout.images, "prompts": prompts}


def evaluate(model_path: str, prompts: list[str], samples_per_prompt: int = 1, seed: int = 0,
             num_steps: int = 16, guidance_scale: float = 4.5, eta: float = 1.0, cache_dir: str | None = None) -> dict:
    """Mean scene_check reward and per-check means over the samples; images for a grid."""
    from ..config import config_from_dict
    from ..rollout import Sampler

    model = {"path": model_path, **({"cache_dir": cache_dir} if cache_dir else {})}
    cfg = config_from_dict({"data": {"prompts": prompts}, "model": model,
                            "sampling": {"num_steps": num_steps, "guidance_scale": guidance_scale, "eta": eta},
                            "sampler": {"batch_size": 32}})
    sampler = Sampler(cfg.model, cfg.sampling, cfg.sampler)  # the base weights, no update published
    return score_sampler(sampler, [p for p in prompts for _ in range(samples_per_prompt)], seed)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="builtin:shapes")
    ap.add_argument("--prompts", type=int, default=64)
    ap.add_argument("--samples-per-prompt", type=int, default=2)
    ap.add_argument("--grid", default=None, help="write the first 32 samples as a PNG grid here")
    a = ap.parse_args(argv)
    out = evaluate(a.model, heldout_prompts(a.prompts), a.samples_per_prompt)
    if a.grid:
        from PIL import Image

        ims = out["images"][:32]
        rows = [np.concatenate(list(ims[i : i + 8]), 1) for i in range(0, len(ims), 8)]
        Image.fromarray(np.concatenate(rows, 0)).resize((8 * 128, len(rows) * 128), Image.NEAREST).save(a.grid)
    print(json.dumps({k: v for k, v in out.items() if k not in ("images", "prompts")}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())

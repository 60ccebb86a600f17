"""How many chains does one draft update need? The pathwise gradient's noise scale.

    .venv/bin/python benchmarks/draft_noise.py [--config configs/tiny.yaml] [--prompts 8]
        [--group 6] [--seed 0] [--tag NAME] [key=value ...]

gradient_snr.py's measurement for learner.algorithm=draft: samples `prompts` training
captions × `group` trajectories with the base policy, and for every trajectory i takes
the gradient g_i of draft's loss −r(decode(x_K)) of one chain from its x_{k_s} over the
trainable weights (learner/draft.py's own loss, its fresh noise seeded per chain, the
default window's steps as the learner selects them for the batch). core.noise_scale
gives ‖G‖² (jackknife SE), tr Σ and B_noise = tr Σ / ‖G‖², the chains at which an
update's noise equals its signal, and the cosine with the true gradient that an update
of the config's chains (learner.draft.batch_size) can expect. The score-function gradient
of the same window needs at least 711 trajectories (gradient_snr.py). Writes
benchmarks/results/gradient_snr/<tag>.json with machine, config and commit.
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch

from common import ROOT, InProcessLoop, shown_config, write_result

from adascope_ray.config import load_config  # noqa: E402
from adascope_ray.core.noise_scale import noise_scale  # noqa: E402
from adascope_ray.learner.draft import detached_policy  # noqa: E402
from adascope_ray.learner.learner import collate  # noqa: E402
from adascope_ray.types import PromptBatch  # noqa: E402


def per_chain_gradients(learner, batch, windows, k_steps: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """((n, P) float64 ∇ of −r of each chain, (n,) its smooth reward r)."""
    frozen = detached_policy(learner.policy, learner.unet)
    grads, rewards, t0 = [], [], time.perf_counter()
    for i, trained in enumerate(windows):
        learner.generator = torch.Generator().manual_seed(seed * 100_000 + i)
        learner.optimizer.zero_grad(set_to_none=True)
        value, r, _ = learner.algorithm.loss(batch, np.array([i]), trained, k_steps, frozen)
        value.backward()
        grads.append(torch.cat([p.grad.flatten() for p in learner.params]).double().numpy())
        rewards.append(r)
        if (i + 1) % max(1, len(windows) // 8) == 0:
            print(f"  gradients of {i + 1}/{len(windows)} chains, {time.perf_counter() - t0:.0f} s", flush=True)
    learner.optimizer.zero_grad(set_to_none=True)
    return np.stack(grads), np.asarray(rewards, np.float64)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", default=str(ROOT / "configs" / "tiny.yaml"))
    ap.add_argument("--prompts", type=int, default=8, help="training captions (the config's first)")
    ap.add_argument("--group", type=int, default=6, help="trajectories per caption")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--tag", default=None)
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "gradient_snr"))
    args, overrides = ap.parse_known_args()
    cfg = load_config(args.config, ["learner.algorithm=draft", *overrides, f"run.seed={args.seed}",
                                    f"learner.seed={args.seed}"])
    loop = InProcessLoop(cfg)
    learner = loop.learner
    prompts = list(dict.fromkeys(loop.prompts))[: args.prompts]
    batch_prompts = [p for p in prompts for _ in range(args.group)]
    t0 = time.perf_counter()
    rollout = loop.sampler.sample(PromptBatch(batch_prompts, np.repeat(np.arange(len(prompts)), args.group),
                                              args.seed, loop.sampler.version))
    batch = collate([loop.score(rollout)], learner.device, learner.policy.schedule)
    mask = learner.window(0, batch)[0].mask                                     # (B, K) the config's window
    windows = [tuple(int(k) for k in np.flatnonzero(m)) for m in mask]
    k_steps = mask.shape[1]
    print(f"{len(batch_prompts)} trajectories in {time.perf_counter() - t0:.0f} s, reward {batch.rewards.mean():.3f}, "
          f"mean window {np.mean([len(w) for w in windows]):.1f} steps", flush=True)
    g, r = per_chain_gradients(learner, batch, windows, k_steps, args.seed)      # (n, P), (n,)
    ns = noise_scale(g)
    per_update = cfg.learner.draft.batch_size
    row = {"signal": ns.signal, "signal_se": ns.signal_se, "trace": ns.trace, "resolved": ns.resolved(),
           "b_noise": ns.b_noise if np.isfinite(ns.b_noise) else None, "b_noise_lower": ns.b_noise_lower(),
           "cos_per_update_upper": 1.0 / float(np.sqrt(1.0 + ns.b_noise_lower() / per_update)),
           "expected_cos_per_update": ns.expected_cosine(per_update), "split_half_cos": ns.split_half_cos}
    bn = f"{ns.b_noise:.0f}" if np.isfinite(ns.b_noise) else "inf"
    print(f"smooth reward {r.mean():.3f}; |G|^2 {ns.signal:.2e} ± {ns.signal_se:.1e}, tr Σ {ns.trace:.2e}, "
          f"B_noise {bn} (≥ {ns.b_noise_lower():.0f}), cos of a {per_update}-chain update "
          f"{ns.expected_cosine(per_update):.2f} (≤ {row['cos_per_update_upper']:.2f}), "
          f"split-half cos {ns.split_half_cos:+.3f}{'' if ns.resolved() else '  (signal not resolved)'}")
    tag = args.tag or f"draft_{Path(args.config).stem}"
    path = write_result(tag, {"config": shown_config(args.config), "overrides": overrides, "prompts": args.prompts,
                              "group": args.group, "seed": args.seed, "chains_per_update": per_update,
                              "smooth_reward_mean": float(r.mean()), "params": int(g.shape[1]), **row}, args.out)
    print(f"wrote {shown_config(path)}")


if __name__ == "__main__":
    main()

"""How many trajectories does one update need? The policy gradient's noise scale, per window.

    .venv/bin/python benchmarks/gradient_snr.py [--config configs/tiny.yaml] [--prompts 8]
        [--group 12] [--seed 0] [--tag NAME] [key=value ...]

Samples `prompts` training captions × `group` trajectories with the config's policy
(before any update), scores them, takes the learner's group-normalised advantages, and
computes for every trajectory i and step k the gradient of A_i · log π(x_{k+1} | x_k)
over the trainable weights (one backward pass per pair: the learner's own log-prob).
A window's per-trajectory gradient is the sum over its steps. For each window —
the config's (as the learner selects it for this batch), all steps, quarters of the
schedule and each single step — core.noise_scale reports ‖G‖² (with its jackknife SE),
tr Σ, B_noise = tr Σ / ‖G‖² (the batch at which the gradient's noise equals its signal),
its lower bound at 2 SE when the signal is not resolved, and the most cosine with the
true gradient that an update of the config's batch can then expect.
Writes benchmarks/results/gradient_snr/<tag>.json with machine, config and commit.
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
from adascope_ray.learner.learner import collate  # noqa: E402
from adascope_ray.types import PromptBatch  # noqa: E402


def per_pair_gradients(learner, batch, rows: np.ndarray, adv: np.ndarray, k_steps: int) -> np.ndarray:
    """(n, K, P) float32: ∇ A_i log π(x_{k+1} | x_k) for each kept row i and step k."""
    out = []
    t0 = time.perf_counter()
    for j, i in enumerate(rows):
        per_step = []
        for k in range(k_steps):
            learner.optimizer.zero_grad(set_to_none=True)
            (float(adv[i]) * learner.log_probs(batch, np.array([[i, k]])).sum()).backward()
            per_step.append(torch.cat([p.grad.flatten() for p in learner.params]).float().numpy())
        out.append(np.stack(per_step))
        if (j + 1) % max(1, len(rows) // 8) == 0:
            print(f"  gradients of {j + 1}/{len(rows)} trajectories, {time.perf_counter() - t0:.0f} s", flush=True)
    learner.optimizer.zero_grad(set_to_none=True)
    return np.stack(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", default=str(ROOT / "configs" / "tiny.yaml"))
    ap.add_argument("--prompts", type=int, default=8, help="training captions (the config's first)")
    ap.add_argument("--group", type=int, default=12, help="trajectories per caption")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--tag", default=None)
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "gradient_snr"))
    args, overrides = ap.parse_known_args()
    cfg = load_config(args.config, overrides + [f"run.seed={args.seed}", f"learner.seed={args.seed}"])
    loop = InProcessLoop(cfg)
    learner = loop.learner
    prompts = list(dict.fromkeys(loop.prompts))[: args.prompts]
    batch_prompts = [p for p in prompts for _ in range(args.group)]
    t0 = time.perf_counter()
    rollout = loop.sampler.sample(PromptBatch(batch_prompts, np.repeat(np.arange(len(prompts)), args.group),
                                              args.seed, loop.sampler.version))
    batch = collate([loop.score(rollout)], learner.device, learner.policy.schedule)
    adv = learner.advantages(batch)
    window = learner.window(0, batch)[0].mask                                   # (B, K) the config's window
    rows = np.flatnonzero(adv.valid)
    k_steps = batch.log_probs.shape[1]
    print(f"{len(batch_prompts)} trajectories in {time.perf_counter() - t0:.0f} s, reward {batch.rewards.mean():.3f}, "
          f"{len(rows)} with a non-zero advantage", flush=True)
    g = per_pair_gradients(learner, batch, rows, adv.values, k_steps)          # (n, K, P)
    per_update = cfg.data.prompts_per_iteration * cfg.data.group_size * max(1, cfg.sampler.num_samplers)
    q = k_steps // 4
    windows = {"config window": window[rows], "all steps": np.ones((len(rows), k_steps), bool)}
    windows |= {f"steps {a}-{a + q - 1}": np.isin(np.arange(k_steps), range(a, a + q))[None].repeat(len(rows), 0)
                for a in range(0, k_steps, q)}
    windows |= {f"step {k}": (np.arange(k_steps) == k)[None].repeat(len(rows), 0) for k in range(k_steps)}
    table = []
    print(f"{'window':<14} {'|G|^2':>10} {'± SE':>9} {'tr Σ':>10} {'B_noise':>9} {'B_noise ≥':>9} "
          f"cos@{per_update} ≤  split-half cos")
    for name, m in windows.items():
        ns = noise_scale((g * m[:, :, None]).sum(1))                           # (n, P) one gradient per trajectory
        row = {"window": name, "signal": ns.signal, "signal_se": ns.signal_se, "trace": ns.trace,
               "b_noise": ns.b_noise if np.isfinite(ns.b_noise) else None, "resolved": ns.resolved(),
               "b_noise_lower": ns.b_noise_lower(),
               "cos_per_update_upper": 1.0 / float(np.sqrt(1.0 + ns.b_noise_lower() / per_update)),
               "expected_cos_per_update": ns.expected_cosine(per_update), "split_half_cos": ns.split_half_cos,
               "steps_per_trajectory": float(m.sum(1).mean())}
        table.append(row)
        bn = f"{ns.b_noise:9.0f}" if np.isfinite(ns.b_noise) else "      inf"
        print(f"{name:<14} {ns.signal:10.2e} {ns.signal_se:9.1e} {ns.trace:10.2e} {bn} {ns.b_noise_lower():9.0f} "
              f"{row['cos_per_update_upper']:8.3f} "
              f"{ns.split_half_cos:+.3f}{'' if ns.resolved() else '  (signal not resolved)'}", flush=True)
    tag = args.tag or Path(args.config).stem
    path = write_result(tag, {"config": shown_config(args.config), "overrides": overrides, "prompts": args.prompts,
                              "group": args.group, "seed": args.seed, "trajectories_per_update": per_update,
                              "reward_mean": float(batch.rewards.mean()), "trajectories_used": int(len(rows)),
                              "params": int(g.shape[2]), "windows": table}, args.out)
    print(f"wrote {shown_config(path)}")


if __name__ == "__main__":
    main()

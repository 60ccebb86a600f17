"""How far learner.algorithm=draft's pathwise gradient can be followed: the change of its
loss along the gradient against the first-order prediction, at growing step sizes.

    .venv/bin/python benchmarks/draft_trust.py [--config configs/tiny.yaml] [--noise-seeds 1,2,3] [--tag NAME] [key=value ...]

One rollout of the config's first iteration (the base policy), its first 8 trajectories
and the default window's steps [0, 5); for each noise seed the chain's loss
L = −mean r(decode(x_K)) (learner/draft.py, the same fresh noise every time) and its
gradient g over the trainable weights; then the weights are moved by a step of norm ε
along −g/‖g‖ and L is measured again with the same noise. A gradient that can be
followed gives a change near the prediction −ε‖g‖; one that carries beyond its own
samples also lowers L of the same captions under other noise (seed + 1000). Beside it, the norm of one Adam
step at the config's learning rate (each weight moves by about lr: lr · √n). Writes
benchmarks/results/<tag>.json (default draft_trust) with machine, config and commit; a
smoother reward is measured with, e.g.,
"rewards.components=[{name: scene_check, soft: {temperature: 40, edge: 20}}]".
"""
from __future__ import annotations

import argparse

import numpy as np
import torch

from common import ROOT, InProcessLoop, shown_config, write_result

from adascope_ray.config import load_config  # noqa: E402
from adascope_ray.learner.draft import detached_policy  # noqa: E402
from adascope_ray.learner.learner import collate  # noqa: E402

STEPS = (1e-3, 3e-3, 1e-2, 3e-2, 1e-1)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", default=str(ROOT / "configs" / "tiny.yaml"))
    ap.add_argument("--noise-seeds", default="1,2,3")
    ap.add_argument("--tag", default="draft_trust", help="name of the result file under benchmarks/results/")
    args, overrides = ap.parse_known_args()
    cfg = load_config(args.config, ["learner.algorithm=draft", *overrides])
    loop = InProcessLoop(cfg)
    lr = loop.learner
    batch = collate([loop.score(loop.sample(0))], lr.device, lr.policy.schedule, lr.version)
    rows, trained, k = np.arange(8), tuple(range(5)), cfg.sampling.num_steps
    frozen = detached_policy(lr.policy, lr.unet)

    def loss(seed: int, grad: bool = False) -> float:
        lr.generator = torch.Generator().manual_seed(seed)
        lr.optimizer.zero_grad(set_to_none=True)
        with torch.set_grad_enabled(grad):
            value, _, _ = lr.algorithm.loss(batch, rows, trained, k, frozen)
        if grad:
            value.backward()
        return float(value.detach())

    def move(g: list[torch.Tensor], by: float) -> None:
        with torch.no_grad():
            for p, x in zip(lr.params, g):
                p.add_(by * x)

    n = sum(p.numel() for p in lr.params)
    out = {"config": shown_config(args.config), "overrides": overrides, "trainable": n, "lr": cfg.learner.lr,
           "adam_step_norm": cfg.learner.lr * float(np.sqrt(n)), "seeds": []}
    print(f"{n} trainable weights; one Adam step at lr {cfg.learner.lr:g} has norm about {out['adam_step_norm']:.3f}")
    for seed in (int(s) for s in args.noise_seeds.split(",")):
        l0 = loss(seed, grad=True)
        g = [p.grad.clone() for p in lr.params]
        gn = float(torch.sqrt(sum((x ** 2).sum() for x in g)))
        row = {"seed": seed, "loss": l0, "grad_norm": gn, "steps": []}
        row["other_noise_loss"] = o0 = loss(seed + 1000)
        for eps in STEPS:
            move(g, -eps / gn)
            l1, o1 = loss(seed), loss(seed + 1000)
            move(g, eps / gn)
            row["steps"].append({"eps": eps, "change": l1 - l0, "predicted": -eps * gn, "other_noise_change": o1 - o0})
            print(f"  noise seed {seed}: step {eps:g}: L {l0:.4f} -> {l1:.4f}, change {l1 - l0:+.5f}, "
                  f"predicted {-eps * gn:+.5f}; other noise {o1 - o0:+.5f}", flush=True)
        out["seeds"].append(row)
    path = write_result(args.tag, out)
    print(f"wrote {shown_config(path)}")


if __name__ == "__main__":
    main()

"""Is the exported LoRA what was trained? The policy's evaluation against a plain diffusers pipeline's.

    .venv/bin/python benchmarks/exported_lora.py [--config configs/tiny.yaml]
        [--iterations 30] [--seed 0] [--split test] [--eval-prompts 48] [--eval-seeds 0,1,2] [--tag NAME] [key=value ...]

A user loads a run's checkpoint into `StableDiffusionPipeline.from_pretrained(model)`
with `load_lora_weights` and samples with the pipeline's own scheduler and noise. This
measures whether that gives the model the run's own evaluation describes, two ways:

1. Stochastic (the evaluation protocol's η = sampling.eta): the gain of the trained
   weights over the base is measured paired inside each sampler — the project's Sampler
   (adascope_ray.evaluation, its noise) and the plain pipeline (one torch.Generator per
   caption and seed, the same for base and trained) — on the split's captions × noise
   seeds. The two gains come from independent noise, so they agree when their
   difference is under 2 standard errors of the difference (√(SE₁² + SE₂²)).
2. Deterministic (η = 0): the trained weights from the same x_T through both, the
   Sampler's deterministic chain and the pipeline with `latents=x_T, eta=0`; the images
   should be the same up to float rounding, and so should the rewards.

The checkpoint is the config trained in process for --iterations (no Ray) and exported
with the learner's own `export()` into a temporary run folder, as the controller writes
it; the sampler holds the same weights, published by the learner.
Writes benchmarks/results/exported_lora/<tag>.json with machine, config and commit.
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from common import ROOT, InProcessLoop, shown_config, write_result

from adascope_ray.config import load_config  # noqa: E402
from adascope_ray.core.paired import paired_difference  # noqa: E402
from adascope_ray.evaluation import EVAL_SEED_BASE, eval_batches, evaluate_sampler  # noqa: E402
from adascope_ray.models.adapter_gate import diffusers_gate  # noqa: E402
from adascope_ray.models.loader import resolve_model_path  # noqa: E402
from adascope_ray.runio import RunDir  # noqa: E402
from adascope_ray.world.splits import split_captions  # noqa: E402

from learning import held_out_reward  # noqa: E402


def train_and_export(cfg, loop: InProcessLoop, iterations: int, out: Path) -> Path:
    """The config trained in process; the final weights written as a run checkpoint."""
    t0 = time.perf_counter()
    for it in range(iterations):
        st = loop.learner.update(it, [loop.score(loop.sample(it))])
        loop.publish()
        if (it + 1) % 10 == 0 or it + 1 == iterations:
            print(f"  iteration {it + 1}/{iterations}: training reward {st.reward_mean:.3f}, "
                  f"{time.perf_counter() - t0:.0f} s", flush=True)
    run = RunDir.create(str(out), "exported", overwrite=False)
    return run.save_checkpoint(iterations, loop.learner.export(), {"iteration": iterations})


def pipeline_images(pipe, cfg, prompts: list[str], seeds: list[int], eta: float,
                    latents: list[torch.Tensor] | None = None, lora: bool = False) -> list[np.ndarray]:
    """Each seed's images (N, H, W, 3) uint8 from the plain pipeline: row i of seed s
    draws its noise from torch.Generator seeded (EVAL_SEED_BASE + s) * 1000 + i, or
    starts from latents[s][i] when given. lora: a LoRA is loaded, gated to
    model.adapter_steps by diffusers_gate's callback when the config sets them."""
    out = []
    for j, s in enumerate(seeds):
        gens = [torch.Generator("cpu").manual_seed((EVAL_SEED_BASE + s) * 1000 + i) for i in range(len(prompts))]
        gate = {"callback_on_step_end": diffusers_gate(pipe, cfg.model.adapter_steps)} if lora else {}
        res = pipe(prompts, num_inference_steps=cfg.sampling.num_steps, guidance_scale=cfg.sampling.guidance_scale, **gate,
                   eta=eta, generator=gens, height=cfg.model.resolution, width=cfg.model.resolution,
                   latents=None if latents is None else latents[j], output_type="np")
        out.append(np.clip(np.round(res.images * 255), 0, 255).astype(np.uint8))   # (N, H, W, 3)
    return out


def totals(score, images: list[np.ndarray], prompts: list[str]) -> np.ndarray:
    """(S, N) rewards of each seed's images."""
    return np.stack([np.asarray(score(im, prompts).total, np.float64) for im in images])


def describe(d) -> dict:
    return {"mean": d.mean, "se": d.se, "n": d.n, "verdict": d.verdict()}


def main() -> None:
    from diffusers import StableDiffusionPipeline

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", default=str(ROOT / "configs" / "tiny.yaml"))
    ap.add_argument("--iterations", type=int, default=30)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--split", default="test", choices=["validation", "test"])
    ap.add_argument("--eval-prompts", type=int, default=48)
    ap.add_argument("--eval-seeds", default="0,1,2")
    ap.add_argument("--tag", default=None)
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "exported_lora"))
    args, overrides = ap.parse_known_args()
    cfg = load_config(args.config, overrides + [f"run.seed={args.seed}", f"learner.seed={args.seed}"])
    if cfg.model.trainable != "lora":
        raise SystemExit(f"{args.config}: model.trainable is {cfg.model.trainable!r}; this compares LoRA checkpoints")
    seeds = [int(s) for s in args.eval_seeds.split(",")]
    prompts = split_captions(args.split, args.eval_prompts, seed=0)
    score = held_out_reward(cfg)
    loop = InProcessLoop(cfg)
    tmp = tempfile.TemporaryDirectory()
    t0 = time.perf_counter()
    base_ev, _ = evaluate_sampler(loop.sampler, score, prompts, seeds)
    ckpt = train_and_export(cfg, loop, args.iterations, Path(tmp.name))
    trained_ev, _ = evaluate_sampler(loop.sampler, score, prompts, seeds)
    policy_gain = paired_difference(base_ev.total, trained_ev.total)
    print(f"policy   {base_ev.total.mean():.4f} -> {trained_ev.total.mean():.4f}: gain {policy_gain.mean:+.4f} ± "
          f"{policy_gain.se:.4f} ({policy_gain.verdict()}), {time.perf_counter() - t0:.0f} s", flush=True)

    # the deterministic chains' starting latents, from the Sampler's own draw
    det = [loop.sampler.sample(b, deterministic=True) for b in eval_batches(prompts, seeds, loop.sampler.version)]
    x_T = [torch.from_numpy(r.latents[:, 0].copy()) for r in det]                 # each (N, C, h, w)
    det_policy = [r.images for r in det]

    model_dir = str(resolve_model_path(cfg.model))
    pipe = StableDiffusionPipeline.from_pretrained(model_dir, local_files_only=True, torch_dtype=getattr(torch, cfg.model.dtype),
                                                   safety_checker=None,
                                                   requires_safety_checker=False)
    pipe.set_progress_bar_config(disable=True)
    base_pipe = totals(score, pipeline_images(pipe, cfg, prompts, seeds, cfg.sampling.eta), prompts)
    det_base = pipeline_images(pipe, cfg, prompts, seeds, 0.0, latents=x_T)  # the control: no LoRA, same x_T
    pipe.load_lora_weights(str(ckpt))
    trained_pipe = totals(score, pipeline_images(pipe, cfg, prompts, seeds, cfg.sampling.eta, lora=True), prompts)
    pipe_gain = paired_difference(base_pipe, trained_pipe)
    print(f"pipeline {base_pipe.mean():.4f} -> {trained_pipe.mean():.4f}: gain {pipe_gain.mean:+.4f} ± "
          f"{pipe_gain.se:.4f} ({pipe_gain.verdict()}), {time.perf_counter() - t0:.0f} s", flush=True)
    gap = pipe_gain.mean - policy_gain.mean
    gap_se = float(np.hypot(pipe_gain.se, policy_gain.se))
    agree = abs(gap) < 2 * gap_se
    print(f"pipeline gain - policy gain {gap:+.4f} ± {gap_se:.4f}: {'agree' if agree else 'DISAGREE'} (2 SE)")

    det_pipe = pipeline_images(pipe, cfg, prompts, seeds, 0.0, latents=x_T, lora=True)
    max_diff = lambda xs, ys: np.concatenate([np.abs(a.astype(np.int16) - b.astype(np.int16)).reshape(len(a), -1).max(1)  # noqa: E731
                                              for a, b in zip(xs, ys)])       # (S*N,) max |Δ| per image, of 255
    pix, control = max_diff(det_policy, det_pipe), max_diff(det_policy, det_base)
    r_policy, r_pipe = totals(score, det_policy, prompts), totals(score, det_pipe, prompts)
    same = float((r_policy == r_pipe).mean())
    print(f"eta 0 from the same x_T: max pixel difference per image median {np.median(pix):.0f}, max {pix.max()} of 255; "
          f"rewards equal on {same:.1%} of {r_policy.size} images ({r_policy.mean():.4f} vs {r_pipe.mean():.4f}); "
          f"control, the pipeline without the LoRA: median {np.median(control):.0f}, max {control.max()}, "
          f"{(control > 0).mean():.1%} of images differ")

    tag = args.tag or f"{Path(args.config).stem}_seed{args.seed}"
    path = write_result(tag, {
        "config": shown_config(args.config), "overrides": overrides, "iterations": args.iterations, "seed": args.seed, "split": args.split,
        "eval_prompts": args.eval_prompts, "eval_seeds": seeds,
        "policy": {"base": float(base_ev.total.mean()), "trained": float(trained_ev.total.mean()), "gain": describe(policy_gain)},
        "pipeline": {"base": float(base_pipe.mean()), "trained": float(trained_pipe.mean()), "gain": describe(pipe_gain)},
        "gap": {"mean": gap, "se": gap_se, "agree": bool(agree)},
        "deterministic": {"max_pixel_diff_median": float(np.median(pix)), "max_pixel_diff_max": int(pix.max()),
                          "rewards_equal": same, "policy_reward": float(r_policy.mean()), "pipeline_reward": float(r_pipe.mean()),
                          "control_max_pixel_diff_median": float(np.median(control)),
                          "control_images_differing": float((control > 0).mean())},
        "policy_total": trained_ev.total.tolist(), "pipeline_total": trained_pipe.tolist()}, args.out)
    print(f"wrote {shown_config(path)}")
    tmp.cleanup()


if __name__ == "__main__":
    main()

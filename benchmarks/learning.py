"""Does training make the model better? Paired held-out gains over several training seeds.

    .venv/bin/python benchmarks/learning.py [--config configs/tiny.yaml] [--seeds 0,1,2]
        [--iterations 30] [--eval-prompts 48] [--eval-seeds 0,1,2,3] [--split test]
        [--train-prompts 16] [--train-seeds 2] [--tag NAME] [key=value ...]

For each training seed, a fresh in-process run of the config (plain Sampler, the
config's rewards and Learner, no Ray; run.seed and learner.seed set to the seed):
the base policy and the trained one are each evaluated on the same captions with the
same noise (adascope_ray.evaluation), on two caption sets:
  - `split` (test by default: captions no rule or calibration ever sees; world.splits),
  - the training captions themselves (the first train_prompts, the first train_seeds noise seeds),
and the paired gain trained − base is reported with its standard error (ddof = 1) and
the verdict (better / worse / no difference at 2 SE). Beside the reward, within-prompt
diversity (core/diversity.py: RMS pixel distance between one caption's images across the
noise seeds), paired per caption. Every seed is reported; the
pooled line treats all seeds' samples as pairs. Writes
benchmarks/results/learning/<tag>.json with machine, config and commit.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import time
from pathlib import Path

import numpy as np

from common import ROOT, InProcessLoop, shown_config, write_result


from adascope_ray.config import load_config  # noqa: E402
from adascope_ray.core.cost import cost_fwd_equiv  # noqa: E402
from adascope_ray.core.diversity import mean_pairwise_distance, pixel_features  # noqa: E402
from adascope_ray.core.paired import paired_difference  # noqa: E402
from adascope_ray.evaluation import Evaluation, evaluate_sampler  # noqa: E402
from adascope_ray.world.splits import split_captions  # noqa: E402

CACHE = Path.home() / ".cache" / "adascope_ray" / "eval"  # base-model evaluations, reused across runs


def held_out_reward(cfg):
    """The config's rewards as evaluation scores them: scene_check pass / fail even when
    training uses its partial credit."""
    from adascope_ray.rewards.combine import CombinedReward

    return CombinedReward([c.model_copy(update={"partial_credit": False}) for c in cfg.rewards.components])


def model_fingerprint(cfg) -> str:
    """SHA-256 of the model folder's weight files, so a retrained model at the same path
    never reuses another's cached evaluation."""
    from adascope_ray.models.loader import resolve_model_path

    root, h = Path(resolve_model_path(cfg.model)), hashlib.sha256()
    for f in sorted(root.rglob("*.safetensors")):
        h.update(f.relative_to(root).as_posix().encode())
        h.update(f.read_bytes())
    return h.hexdigest()[:16]


def diversity(images: list[np.ndarray]) -> np.ndarray:
    """(N,) within-prompt diversity from each seed's images (N, H, W, 3): a caption's
    images across the noise seeds, RMS pixel distance."""
    feats = np.stack([pixel_features(im) for im in images], axis=1)            # (N, S, D)
    return mean_pairwise_distance(feats, "rms")


def base_evaluation(cfg, loop: InProcessLoop, score, prompts: list[str], seeds: list[int]) -> tuple[Evaluation, np.ndarray]:
    """The untrained policy's evaluation (LoRA B = 0: the base model whatever the seed)
    and its per-caption diversity, cached on disk by model, sampling settings, rewards,
    prompts and seeds."""
    sampling = cfg.sampling.model_dump(exclude={"initial_noise"})  # evaluation draws each row's own x_T (eval_batches)
    key = json.dumps([cfg.model.path, model_fingerprint(cfg), cfg.model.resolution, sampling, cfg.sampler.batch_size,
                      [c.model_dump() | {"partial_credit": False} for c in cfg.rewards.components], prompts, seeds], sort_keys=True)
    path = CACHE / f"{hashlib.sha256(key.encode()).hexdigest()[:16]}.json"
    if path.is_file() and "diversity" in (d := json.loads(path.read_text())):
        return Evaluation.from_json(d), np.asarray(d["diversity"], np.float64)
    ev, images = evaluate_sampler(loop.sampler, score, prompts, seeds)
    div = diversity(images)
    CACHE.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(ev.to_json() | {"diversity": div.tolist()}))
    return ev, div


def run_seed(cfg_path: str, overrides: list[str], seed: int, iterations: int, split: str, eval_prompts: int,
             eval_seeds: list[int], train_prompts: int, train_seeds: int) -> dict:
    cfg = load_config(cfg_path, overrides + [f"run.seed={seed}", f"learner.seed={seed}"])
    loop = InProcessLoop(cfg)
    score = held_out_reward(cfg)
    sets = {split: (split_captions(split, eval_prompts, seed=0), eval_seeds),
            "train": (list(dict.fromkeys(loop.prompts))[:train_prompts], eval_seeds[:train_seeds])}
    t0 = time.perf_counter()
    base = {name: base_evaluation(cfg, loop, score, p, sd) for name, (p, sd) in sets.items()}
    eval_s = time.perf_counter() - t0
    curve, cost, t0 = [], 0.0, time.perf_counter()
    for it in range(iterations):
        st = loop.learner.update(it, [loop.score(loop.sample(it))])
        loop.publish()
        cost += cost_fwd_equiv(st.sampler_forward_rows, st.learner_forward_rows)
        curve.append({"reward": st.reward_mean, "clipfrac": st.clipfrac, "approx_kl": st.approx_kl,
                      "zero_std_ratio": st.zero_std_ratio, "window_start": st.window_start_mean,
                      "window_length": st.window_length_mean, **st.loss_terms, **st.algorithm})
        if (it + 1) % 10 == 0 or it + 1 == iterations:
            print(f"  seed {seed} iteration {it + 1}/{iterations}: training reward {st.reward_mean:.3f}, "
                  f"{time.perf_counter() - t0:.0f} s", flush=True)
    train_s = time.perf_counter() - t0
    out = {"seed": seed, "train_s": train_s, "eval_s_per_policy": eval_s, "cost": cost, "curve": curve}
    for name, (p, sd) in sets.items():
        (b, b_div), (final, images) = base[name], evaluate_sampler(loop.sampler, score, p, sd)
        f_div = diversity(images)
        gains = final.against(b)
        gains["diversity"] = paired_difference(b_div, f_div)
        out[name] = {"prompts": len(p), "base": b.summary(), "final": final.summary(),
                     "gain": {k: {"mean": d.mean, "se": d.se, "n": d.n, "verdict": d.verdict()} for k, d in gains.items()},
                     "base_total": b.total.tolist(), "final_total": final.total.tolist(),
                     "base_diversity": b_div.tolist(), "final_diversity": f_div.tolist()}
        g, dv = gains["reward"], gains["diversity"]
        print(f"  seed {seed} {name:<10} {b.summary()['reward']:.3f} -> {final.summary()['reward']:.3f}  "
              f"gain {g.mean:+.4f} ± {g.se:.4f} ({g.verdict()}); diversity {np.nanmean(b_div):.4f} -> "
              f"{np.nanmean(f_div):.4f} ({dv.mean:+.4f} ± {dv.se:.4f}, {dv.verdict()})", flush=True)
    print(f"  seed {seed}: training {train_s:.0f} s, clipfrac first/last {curve[0]['clipfrac']:.2f}/{curve[-1]['clipfrac']:.2f}",
          flush=True)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", default=str(ROOT / "configs" / "tiny.yaml"))
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--iterations", type=int, default=30)
    ap.add_argument("--eval-prompts", type=int, default=48)
    ap.add_argument("--eval-seeds", default="0,1,2,3")
    ap.add_argument("--split", default="test", choices=["validation", "test"])
    ap.add_argument("--train-prompts", type=int, default=16, help="training captions evaluated (with the first two noise seeds)")
    ap.add_argument("--train-seeds", type=int, default=2, help="noise seeds of the training captions' evaluation (the first of --eval-seeds)")
    ap.add_argument("--tag", default=None, help="result name (default: the config's stem)")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "learning"))
    args, overrides = ap.parse_known_args()
    seeds, eval_seeds = [int(s) for s in args.seeds.split(",")], [int(s) for s in args.eval_seeds.split(",")]
    runs = []
    for seed in seeds:
        runs.append(run_seed(args.config, overrides, seed, args.iterations, args.split, args.eval_prompts, eval_seeds,
                             args.train_prompts, args.train_seeds))
    pooled = {}
    for name in (args.split, "train"):
        d = paired_difference(np.concatenate([np.ravel(r[name]["base_total"]) for r in runs]),
                              np.concatenate([np.ravel(r[name]["final_total"]) for r in runs]))
        dv = paired_difference(np.concatenate([r[name]["base_diversity"] for r in runs]),
                               np.concatenate([r[name]["final_diversity"] for r in runs]))
        pooled[name] = {"mean": d.mean, "se": d.se, "n": d.n, "verdict": d.verdict(),
                        "diversity": {"mean": dv.mean, "se": dv.se, "n": dv.n, "verdict": dv.verdict()}}
        per_seed = ", ".join(f"{r[name]['gain']['reward']['mean']:+.3f}±{r[name]['gain']['reward']['se']:.3f}" for r in runs)
        print(f"{name:<10} pooled gain {d.mean:+.4f} ± {d.se:.4f} ({d.verdict()}); per seed: {per_seed}; "
              f"diversity {dv.mean:+.4f} ± {dv.se:.4f} ({dv.verdict()})")
    tag = args.tag or Path(args.config).stem
    path = write_result(tag, {"config": shown_config(args.config), "overrides": overrides, "iterations": args.iterations,
                              "split": args.split, "eval_prompts": args.eval_prompts, "eval_seeds": eval_seeds,
                              "pooled": pooled, "runs": runs}, args.out)
    print(f"wrote {shown_config(path)}")


if __name__ == "__main__":
    main()

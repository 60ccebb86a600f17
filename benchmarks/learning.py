"""Does training make the model better? Paired held-out gains over several training seeds.

    .venv/bin/python benchmarks/learning.py [--config configs/tiny.yaml] [--seeds 0,1,2]
        [--iterations 30] [--eval-prompts 48] [--eval-seeds 0,1,2,3] [--split test|validation|validation,test]
        [--train-prompts 16] [--train-seeds 2] [--select-every N] [--noise-stride N] [--tag NAME] [key=value ...]

For each training seed, a fresh in-process run of the config (plain Sampler, the
config's rewards and Learner, no Ray; run.seed and learner.seed set to the seed):
the base policy and the trained one are each evaluated on the same captions with the
same noise (adascope_ray.evaluation), on two caption sets:
  - `split` (test by default: captions no rule or calibration ever sees; world.splits;
    `validation,test` scores both, the first to decide on and the second to report),
  - the training captions themselves (the first train_prompts, the first train_seeds noise seeds),
and the paired gain trained − base is reported with its standard error (ddof = 1) and
the verdict (better / worse / no difference at 2 SE). Beside the reward, within-prompt
diversity (core/diversity.py: RMS pixel distance between one caption's images across the
noise seeds), paired per caption. Every seed is reported; the
pooled line treats all seeds' samples as pairs, the line below it takes each caption as
one unit (would other captions of the split gain? core/paired.py). With the same noise
seeds for every training seed, the seeds share the base's samples, so the pooled pairs
are not independent; --noise-stride N evaluates training seed s with noise seeds
e + N·s instead, and the pooled line is then an honest SE for these captions.

--select-every N does what a run with eval.every = N does for its checkpoints/best:
every N iterations the policy is evaluated on the config's eval captions (validation
split, eval.num_prompts × eval.seeds), and the evaluation with the highest mean reward
(core/stopping.py's `best`; the base counts, so "no training" can win) names the weights
kept. Both the final and the selected weights are then scored on `split`: the
selection reads validation only, so its test-split gain is not biased by the choice. Writes
benchmarks/results/learning/<tag>.json with machine, config and commit.
"""
from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import time
from pathlib import Path

import numpy as np

from common import ROOT, InProcessLoop, shown_config, write_result
from compare_runs import caption_ids


from adascope_ray.config import load_config  # noqa: E402
from adascope_ray.core.cost import cost_fwd_equiv  # noqa: E402
from adascope_ray.core.diversity import mean_pairwise_distance, pixel_features  # noqa: E402
from adascope_ray.core.paired import clustered_difference, paired_difference  # noqa: E402
from adascope_ray.core.stopping import stop_decision  # noqa: E402
from adascope_ray.evaluation import Evaluation, evaluate_sampler  # noqa: E402
from adascope_ray.world.splits import split_captions  # noqa: E402

CACHE = Path.home() / ".cache" / "adascope_ray" / "eval"  # base-model evaluations, reused across runs


def held_out_reward(cfg):
    """The config's rewards as evaluation scores them: scene_check pass / fail and the mean
    of its checks even when training uses its partial credit or their product."""
    from adascope_ray.rewards.combine import CombinedReward

    return CombinedReward(cfg.rewards.components, evaluation=True)


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
                      [[c.name, c.weight, c.evaluation_options()] for c in cfg.rewards.components], prompts, seeds], sort_keys=True)
    path = CACHE / f"{hashlib.sha256(key.encode()).hexdigest()[:16]}.json"
    if path.is_file() and "diversity" in (d := json.loads(path.read_text())):
        return Evaluation.from_json(d), np.asarray(d["diversity"], np.float64)
    ev, images = evaluate_sampler(loop.sampler, score, prompts, seeds)
    div = diversity(images)
    CACHE.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(ev.to_json() | {"diversity": div.tolist()}))
    return ev, div


class Selection:
    """The in-run evaluation's choice of weights (eval.every's checkpoints/best), in process."""

    def __init__(self, cfg, loop: InProcessLoop, score, every: int):
        self.loop, self.score, self.every = loop, score, every
        self.prompts, self.seeds = split_captions(cfg.eval.world_split, cfg.eval.num_prompts, seed=0), list(cfg.eval.seeds)
        first, _ = base_evaluation(cfg, loop, score, self.prompts, self.seeds)
        self.history, self.at = [first.total], [0]
        self.kept = self.snapshot()  # the weights of the best evaluation so far

    def snapshot(self):
        """The learner's weights now, copied (publish()'s arrays share the live parameters' memory)."""
        w = self.loop.learner.publish()
        return dataclasses.replace(w, state={k: v.copy() for k, v in w.state.items()})

    def after(self, iteration: int, last: bool) -> None:
        """Evaluate after `iteration` updates when it is due; keep the weights if best so far."""
        if iteration % self.every and not last:
            return
        ev, _ = evaluate_sampler(self.loop.sampler, self.score, self.prompts, self.seeds)
        self.history.append(ev.total)
        self.at.append(iteration)
        best = stop_decision(self.history, None).best
        if best == len(self.history) - 1:
            self.kept = self.snapshot()
        d = paired_difference(self.history[0], ev.total)
        print(f"  selection after {iteration} updates: {d.mean:+.4f} ± {d.se:.4f} over the base "
              f"(best: after {self.at[best]})", flush=True)

    def best(self):
        """(updates, weights) of the best evaluation."""
        return self.at[stop_decision(self.history, None).best], self.kept

    def record(self) -> dict:
        return {"prompts": len(self.prompts), "seeds": self.seeds, "at": self.at, "best_at": self.best()[0],
                "gain": [paired_difference(self.history[0], h).mean for h in self.history],
                "se": [paired_difference(self.history[0], h).se if i else 0.0 for i, h in enumerate(self.history)]}


def evaluate_sets(loop, score, sets, base, label: str, seed: int) -> dict:
    """The sampler's current weights on each caption set, paired with the base."""
    out = {}
    for name, (p, sd) in sets.items():
        (b, b_div), (final, images) = base[name], evaluate_sampler(loop.sampler, score, p, sd)
        f_div = diversity(images)
        gains = final.against(b)
        gains["diversity"] = paired_difference(b_div, f_div)
        out[name] = {"prompts": len(p), "base": b.summary(), "final": final.summary(),
                     "gain": {k: {"mean": d.mean, "se": d.se, "n": d.n, "verdict": d.verdict()} for k, d in gains.items()},
                     "base_total": b.total.tolist(), "final_total": final.total.tolist(),
                     "base_components": {k: v.tolist() for k, v in b.components.items()},
                     "final_components": {k: v.tolist() for k, v in final.components.items()},
                     "base_diversity": b_div.tolist(), "final_diversity": f_div.tolist()}
        g, dv = gains["reward"], gains["diversity"]
        print(f"  seed {seed} {label}{name:<10} {b.summary()['reward']:.3f} -> {final.summary()['reward']:.3f}  "
              f"gain {g.mean:+.4f} ± {g.se:.4f} ({g.verdict()}); diversity {np.nanmean(b_div):.4f} -> "
              f"{np.nanmean(f_div):.4f} ({dv.mean:+.4f} ± {dv.se:.4f}, {dv.verdict()})", flush=True)
    return out


def run_seed(cfg_path: str, overrides: list[str], seed: int, iterations: int, split: str, eval_prompts: int,
             eval_seeds: list[int], train_prompts: int, train_seeds: int, select_every: int = 0) -> dict:
    cfg = load_config(cfg_path, overrides + [f"run.seed={seed}", f"learner.seed={seed}"])
    loop = InProcessLoop(cfg)
    score = held_out_reward(cfg)
    sets = {**{name: (split_captions(name, eval_prompts, seed=0), eval_seeds) for name in split.split(",")},
            "train": (list(dict.fromkeys(loop.prompts))[:train_prompts], eval_seeds[:train_seeds])}
    t0 = time.perf_counter()
    base = {name: base_evaluation(cfg, loop, score, p, sd) for name, (p, sd) in sets.items()}
    eval_s = time.perf_counter() - t0
    selection = Selection(cfg, loop, score, select_every) if select_every else None
    curve, cost, t0 = [], 0.0, time.perf_counter()
    for it in range(iterations):
        st = loop.learner.update(it, [loop.score(loop.sample(it))])
        loop.publish()
        cost += cost_fwd_equiv(st.sampler_forward_rows, st.learner_forward_rows)
        curve.append({"reward": st.reward_mean, "clipfrac": st.clipfrac, "approx_kl": st.approx_kl,
                      "zero_std_ratio": st.zero_std_ratio, "window_start": st.window_start_mean,
                      "window_length": st.window_length_mean, **st.loss_terms, **st.algorithm,
                      **{f"components/{k}": v for k, v in st.reward_components.items()}})
        if selection is not None:
            selection.after(it + 1, it + 1 == iterations)
        if (it + 1) % 10 == 0 or it + 1 == iterations:
            print(f"  seed {seed} iteration {it + 1}/{iterations}: training reward {st.reward_mean:.3f}, "
                  f"{time.perf_counter() - t0:.0f} s", flush=True)
    train_s = time.perf_counter() - t0
    out = {"seed": seed, "eval_seeds": eval_seeds, "train_s": train_s, "eval_s_per_policy": eval_s, "cost": cost,
           "curve": curve}
    out.update(evaluate_sets(loop, score, sets, base, "", seed))
    if selection is not None:
        at, weights = selection.best()
        loop.sampler.set_weights(dataclasses.replace(weights, version=loop.sampler.version + 1))  # the sampler takes newer only
        out["selection"] = selection.record()
        out["selected"] = evaluate_sets(loop, score, sets, base, f"selected (after {at}) ", seed)
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
    ap.add_argument("--split", default="test", choices=["validation", "test", "validation,test"])
    ap.add_argument("--noise-stride", type=int, default=0,
                    help="training seed s is evaluated (base and trained alike) with noise seeds e + N·s: pooled "
                         "seeds then share no base sample (0: every seed uses --eval-seeds)")
    ap.add_argument("--train-prompts", type=int, default=16, help="training captions evaluated (with the first two noise seeds)")
    ap.add_argument("--train-seeds", type=int, default=2, help="noise seeds of the training captions' evaluation (the first of --eval-seeds)")
    ap.add_argument("--select-every", type=int, default=0, help="evaluate the config's validation captions every N iterations and also score the best weights (0: off)")
    ap.add_argument("--tag", default=None, help="result name (default: the config's stem)")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "learning"))
    args, overrides = ap.parse_known_args()
    seeds, eval_seeds = [int(s) for s in args.seeds.split(",")], [int(s) for s in args.eval_seeds.split(",")]
    runs = []
    for seed in seeds:
        noise = [e + args.noise_stride * seed for e in eval_seeds]
        runs.append(run_seed(args.config, overrides, seed, args.iterations, args.split, args.eval_prompts, noise,
                             args.train_prompts, args.train_seeds, args.select_every))
    pooled = {}
    which = [("", lambda r: r)] + ([("selected ", lambda r: r["selected"])] if args.select_every else [])
    for (label, get), name in ((w, n) for w in which for n in (*args.split.split(","), "train")):
        rs = [get(r) for r in runs]
        base, final = (np.concatenate([np.ravel(r[name][key]) for r in rs]) for key in ("base_total", "final_total"))
        d = paired_difference(base, final)
        bc = clustered_difference(base, final, np.concatenate([caption_ids(r[name]["base_total"]) for r in rs]))
        dv = paired_difference(np.concatenate([r[name]["base_diversity"] for r in rs]),
                               np.concatenate([r[name]["final_diversity"] for r in rs]))
        checks = {k: paired_difference(np.concatenate([np.ravel(r[name]["base_components"][k]) for r in rs]),
                                       np.concatenate([np.ravel(r[name]["final_components"][k]) for r in rs]))
                  for k in rs[0][name].get("base_components", {})}
        pooled[label + name] = {"mean": d.mean, "se": d.se, "n": d.n, "verdict": d.verdict(),
                                "by_caption": {"mean": bc.mean, "se": bc.se, "n": bc.n, "verdict": bc.verdict()},
                                "diversity": {"mean": dv.mean, "se": dv.se, "n": dv.n, "verdict": dv.verdict()},
                                "checks": {k: {"mean": c.mean, "se": c.se, "n": c.n, "verdict": c.verdict()}
                                           for k, c in checks.items()}}
        per_seed = ", ".join(f"{r[name]['gain']['reward']['mean']:+.3f}±{r[name]['gain']['reward']['se']:.3f}" for r in rs)
        print(f"{label}{name:<10} pooled gain {d.mean:+.4f} ± {d.se:.4f} ({d.verdict()}); per seed: {per_seed}; "
              f"diversity {dv.mean:+.4f} ± {dv.se:.4f} ({dv.verdict()})")
        print(f"    each caption one unit: {bc.mean:+.4f} ± {bc.se:.4f} ({bc.n} captions, {bc.verdict()})")
        if checks:
            print("    per check: " + ", ".join(f"{k.split('/')[-1]} {c.mean:+.3f} ± {c.se:.3f} ({c.verdict()})"
                                             for k, c in checks.items()))
    tag = args.tag or Path(args.config).stem
    path = write_result(tag, {"config": shown_config(args.config), "overrides": overrides, "iterations": args.iterations,
                              "split": args.split, "eval_prompts": args.eval_prompts, "eval_seeds": eval_seeds,
                              **({"noise_stride": args.noise_stride} if args.noise_stride else {}),
                              "pooled": pooled, "runs": runs}, args.out)
    print(f"wrote {shown_config(path)}")


if __name__ == "__main__":
    main()

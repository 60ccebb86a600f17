"""How much reward the base policy's own samples hold: what a policy that learned to draw
its better samples could reach, before any training.

    .venv/bin/python benchmarks/headroom.py [--config configs/tiny.yaml] [--split validation]
        [--prompts 48] [--seeds 16] [--ks 1,2,4,8,16] [--tag NAME] [key=value ...]

The config's base policy samples each of `prompts` captions of a split with `seeds`
noise seeds (the evaluation protocol's noise, adascope_ray.evaluation), and every sample
is scored as evaluation scores it (scene_check pass / fail per check, their mean). Per
caption c, with its N rewards sorted r_(1) ≤ … ≤ r_(N), the expected best of k draws
without replacement is

    E[max of k] = Σ_i r_(i) · C(i − 1, k − 1) / C(N, k)          (k ≤ N)

(the order statistic's exact weights; k = 1 gives the mean, k = N the maximum). The mean
over captions of E[max of k] is what the reward would be if the policy always drew the
best of k of its present samples for each caption: a reference for how far sharpening
the present distribution can go, not a bound on what training can reach (a trained
policy may draw images the base never does). Beside it, the share of the reward's
variance that is within captions (the noise's: what a policy can choose among) and
between captions (the caption's own difficulty at this model), and each check the same
way.

--shared-start G,D also samples every caption in D groups of G rows that share their
starting noise x_T (sampling.initial_noise=per_group) and differ only in the noise of
each step, the actions a policy gradient credits. The mean within-group variance (ddof
= 1) estimates E[Var(R | x_T)], the part of a caption's variance that the actions
decide; over the within-caption variance of as many free draws in the same layout (every
row its own x_T, same batch seeds; ddof = 1) it gives the actions' share, the rest being
decided by x_T. --branch-at j,… repeats it with the groups sharing also the deterministic
(η = 0) path to x_j, as sampler placement's window [j, K) runs it: the share of the
variance still left to steps j … K−1. Writes benchmarks/results/learning/<tag>.json with
machine, config and commit.
"""
from __future__ import annotations

import argparse
from math import comb

import numpy as np

from common import ROOT, shown_config, write_result
from learning import held_out_reward

from adascope_ray.config import load_config  # noqa: E402
from adascope_ray.evaluation import EVAL_SEED_BASE, evaluate_sampler  # noqa: E402
from adascope_ray.rollout import Sampler  # noqa: E402
from adascope_ray.types import PromptBatch  # noqa: E402
from adascope_ray.world.splits import split_captions  # noqa: E402


def base_sampler(config: str, overrides: list[str]) -> Sampler:
    """The config's policy before any update (its adapters start at zero)."""
    c = load_config(config, overrides)
    return Sampler(c.model, c.sampling, c.sampler, pool=c.window.pool)


def by_series(total: np.ndarray, components: dict) -> dict[str, np.ndarray]:
    """'reward' and each check ('scene_check/count' -> 'count'), the arrays as given."""
    return {"reward": np.asarray(total, np.float64),
            **{k.rsplit("/", 1)[-1]: np.asarray(v, np.float64) for k, v in components.items() if "/" in k}}


def expected_best_of(rewards: np.ndarray, k: int) -> np.ndarray:
    """rewards: (N, C) draws per caption. Returns (C,) the expected maximum of k of the N
    draws taken without replacement (order-statistic weights C(i-1, k-1) / C(N, k))."""
    n = rewards.shape[0]
    if not 1 <= k <= n:
        raise ValueError(f"k must be in 1..{n}, got {k}")
    w = np.array([comb(i, k - 1) for i in range(n)], np.float64) / comb(n, k)     # (N,), sums to 1
    return w @ np.sort(rewards, axis=0)


def variance_shares(rewards: np.ndarray) -> dict[str, float]:
    """rewards: (N, C). The total variance split into the mean within-caption variance and
    the variance of the caption means (population forms, so the two add up)."""
    within = float(rewards.var(axis=0).mean())
    between = float(rewards.mean(axis=0).var())
    total = within + between
    return {"within": within, "between": between, "within_share": within / total if total > 0 else float("nan")}


def ratio_of_means(num: np.ndarray, den: np.ndarray) -> tuple[float, float]:
    """mean(num) / mean(den) over captions and its jackknife standard error (leave one
    caption out), or NaN where the denominator's mean is 0."""
    n = len(num)
    if n < 2 or den.sum() <= 0:
        return float("nan"), float("nan")
    ratio = float(num.mean() / den.mean())
    loo = (num.sum() - num) / np.maximum(den.sum() - den, 1e-300)               # (n,) leave-one-out ratios
    se = float(np.sqrt((n - 1) / n * ((loo - loo.mean()) ** 2).sum()))
    return ratio, se


def actions_share(config: str, overrides: list[str], score, prompts: list[str], series: dict, spec: str,
                  branch_at: list[int]) -> dict:
    """Per branch step j: D groups of G rows per caption that share x_T and (j > 0) the
    deterministic path to x_j, then draw every step's noise from j on. Returns, per j and
    series, E[Var(R | shared part)] against Var(R) within captions (independent draws)."""
    g, d = (int(x) for x in spec.split(","))
    k_steps = load_config(config, overrides).sampling.num_steps

    def draws(initial_noise: str, j: int) -> dict[str, np.ndarray]:
        """Every caption in D groups of G rows: name -> (C, D, G) rewards."""
        sampler = base_sampler(config, overrides + [f"sampling.initial_noise={initial_noise}"])
        rows = {name: [] for name in series}                           # name -> D arrays (C, G)
        for draw in range(d):
            batch = PromptBatch(prompts=[p for p in prompts for _ in range(g)],
                                group_ids=np.repeat(np.arange(len(prompts)), g), seed=EVAL_SEED_BASE + 10_000 + draw,
                                policy_version=sampler.version, window=(j, k_steps) if j else None)
            out = score(sampler.sample(batch).images, batch.prompts)
            for name, v in by_series(out.total, out.components).items():
                rows[name].append(v.reshape(len(prompts), g))
            print(".", end="", flush=True)
        print()
        return {name: np.stack(v, axis=1) for name, v in rows.items()}

    # the reference: the same layout and seeds, every row its own x_T and every step stochastic
    free = draws("per_sample", 0)
    res = {"group": g, "draws": d, "by_branch_step": {}}
    for j in branch_at:
        tied, at = draws("per_group", j), {}
        res["by_branch_step"][j] = at
        for name in series:
            keep = ~np.isnan(tied[name]).all(axis=(1, 2))
            given = np.var(tied[name][keep], axis=2, ddof=1).mean(axis=1)           # (C',) Var(R | shared part)
            within = np.var(free[name][keep].reshape(int(keep.sum()), -1), axis=1, ddof=1)  # (C',) Var(R), free draws
            share, se = ratio_of_means(given, within)
            at[name] = {"var_given_shared": float(given.mean()), "var_within_caption": float(within.mean()),
                        "share_left": share, "share_left_se": se}
            shared = "x_T" if j == 0 else f"x_T and the η = 0 path to x_{j}"
            print(f"  j={j:>2} {name:>10}: Var(R | {shared}) {given.mean():.4f} of Var(R) within a caption "
                  f"{within.mean():.4f}: share left to steps {j}..{k_steps - 1}: {share:.2f} ± {se:.2f}", flush=True)
    return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", default=str(ROOT / "configs" / "tiny.yaml"))
    ap.add_argument("--split", default="validation", choices=["train", "validation", "test"])
    ap.add_argument("--prompts", type=int, default=48)
    ap.add_argument("--seeds", type=int, default=16)
    ap.add_argument("--ks", default="1,2,4,8,16")
    ap.add_argument("--shared-start", default="", help="G,D: D groups of G rows sharing x_T per caption")
    ap.add_argument("--branch-at", default="0", help="with --shared-start: steps j at which the groups branch")
    ap.add_argument("--tag", default="headroom")
    a, overrides = ap.parse_known_args()
    score = held_out_reward(load_config(a.config, overrides))
    prompts = split_captions(a.split, a.prompts, seed=0)
    seeds = list(range(a.seeds))
    ks = [int(k) for k in a.ks.split(",")]
    ev, _ = evaluate_sampler(base_sampler(a.config, overrides), score, prompts, seeds,
                             on_batch=lambda: print(".", end="", flush=True))
    print()
    series = by_series(ev.total, ev.components)
    rows = {}
    for name, r in series.items():                                   # r: (S, N) seeds x captions
        r = r[:, ~np.isnan(r).all(axis=0)]  # a check a caption does not ask for (position) is NaN on every seed
        rows[name] = {"best_of": {k: float(expected_best_of(r, k).mean()) for k in ks},
                      "never": float((r.max(axis=0) == 0).mean()), "always": float((r.min(axis=0) == 1).mean()),
                      **variance_shares(r)}
        b = rows[name]["best_of"]
        print(f"{name:>12}: " + "  ".join(f"best of {k} {b[k]:.3f}" for k in ks)
              + f"  | within-caption share of variance {rows[name]['within_share']:.2f}"
              + f"  | captions never / always passing {rows[name]['never']:.2f} / {rows[name]['always']:.2f}",
              flush=True)
    shared = actions_share(a.config, overrides, score, prompts, series, a.shared_start,
                           [int(j) for j in a.branch_at.split(",")]) if a.shared_start else None
    path = write_result(a.tag, {"shared_start": shared, "config": shown_config(a.config), "overrides": overrides,
                                "split": a.split, "prompts": prompts, "seeds": seeds, "ks": ks, "by_series": rows,
                                "total": ev.total.tolist(),
                                "components": {k: v.tolist() for k, v in ev.components.items()}},
                        ROOT / "benchmarks" / "results" / "learning")
    print(f"wrote {path.relative_to(ROOT)}")


if __name__ == "__main__":
    main()

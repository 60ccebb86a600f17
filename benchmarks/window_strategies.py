"""Window strategies on the shapes world under the paired protocol: every strategy's trained
checkpoints against the base model, against full and against adascope, several seeds.

    .venv/bin/python benchmarks/window_strategies.py [--strategies full,adascope,fraction,random_window,sliding]
        [--seeds 0,1,2] [--split test] [--eval-seeds 0,1,2] [--jobs 3] [--prefix T_]
        [--use NAME=FILE[,FILE ...]] [--no-run] [key=value ...]

Each (strategy, seed) is one run of benchmarks/learning.py (a fresh in-process run of the
config; the base and the trained policy evaluated on the split's 48 captions × the noise
seeds, paired sample for sample; docs/evaluation.md), its result file
results/learning/<prefix><strategy>_seed<s>.json. A result already there is read, not
run again; --use points a strategy at other learning.py results (several seeds in one
file, or one file a seed). Missing runs go --jobs at a time, one torch thread each.

The strategies at equal cost: each trains 5 of the 16 steps per trajectory, the length
adascope's window has on this config (fraction 5/16; random_window and sliding with
windows of 5); random_window (Flow-GRPO-Fast) and sliding (MixGRPO) run as their
namesakes do, deterministic (η = 0) outside the window, with window.placement = sampler.

The table: each strategy's gain over the base (pooled over seeds, and every seed), its
paired difference from full and from adascope (compare_runs.py), and its cost against
full's. The verdict on the paper's headline: PASS when adascope − full is better by more
than 2 paired standard errors at <= 0.5 of full's cost. Writes
results/window_strategies_protocol.{json,png}, with machine, config and commit.
"""
from __future__ import annotations

import argparse
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from common import ROOT, shown_config, write_result
from compare_runs import compare, load_side

SAMPLER_PLACED = ["window.placement=sampler", "sampling.initial_noise=per_group"]
STRATEGIES: dict[str, list[str]] = {
    "full": ["window.strategy=full"],
    "adascope": [],                                                    # the config's own window
    "fraction": ["window.strategy=fraction", "window.fraction.fraction=0.3125"],   # 5 of 16 steps, redrawn each pass
    "random_window": ["window.strategy=random_window", "window.random_window.size=5",
                      "window.random_window.start_range=[0,11]", *SAMPLER_PLACED],
    "sliding": ["window.strategy=sliding", "window.sliding.size=5", "window.sliding.every=3", *SAMPLER_PLACED],
}
RESULTS = ROOT / "benchmarks" / "results" / "learning"


def verdict(ada_minus_full: dict, cost_ratio: float, full_gain: dict) -> str:
    """The headline under the protocol: adascope ends higher than full by more than 2
    paired SE at <= 0.5 of full's cost. Says so when full itself does not rise above the
    base (then "reaching full's final reward" is no achievement)."""
    d, se = ada_minus_full["b_minus_a"], ada_minus_full["se"]
    ok = d > 2 * se and cost_ratio <= 0.5
    said = (f"adascope − full {d:+.4f} ± {se:.4f} ({ada_minus_full['verdict']}) at {cost_ratio:.2f} of full's cost "
            f"(target: better at <= 0.50): {'PASS' if ok else 'FAIL'}")
    if not full_gain["mean"] > 2 * full_gain["se"]:
        said += f"; full itself does not rise above the base ({full_gain['mean']:+.4f} ± {full_gain['se']:.4f})"
    return said


def pooled_gain(side: dict[int, dict], split: str) -> dict:
    """The gain over the base pooled over a side's seeds (paired samples)."""
    from adascope_ray.core.paired import paired_difference

    d = paired_difference(np.concatenate([np.ravel(r[split]["base_total"]) for r in side.values()]),
                          np.concatenate([np.ravel(r[split]["final_total"]) for r in side.values()]))
    return {"mean": d.mean, "se": d.se, "n": d.n, "verdict": d.verdict()}


def run_missing(args, overrides: list[str], names: list[str], seeds: list[int]) -> dict[str, str]:
    """Each strategy's result files (comma-separated), running learning.py for the missing ones."""
    files, todo = {}, []
    for name in names:
        if name in args.use:
            files[name] = args.use[name]
            continue
        paths = [RESULTS / f"{args.prefix}{name}_seed{s}.json" for s in seeds]
        files[name] = ",".join(str(p) for p in paths)
        todo += [(name, s, p) for s, p in zip(seeds, paths) if not p.is_file()]
    if todo and args.no_run:
        raise SystemExit("--no-run: missing results " + ", ".join(shown_config(p) for _, _, p in todo))
    print(f"{len(todo)} runs to do, {args.jobs} at a time", flush=True)

    def one(job):
        name, seed, path = job
        cmd = [sys.executable, str(ROOT / "benchmarks" / "learning.py"), "--config", args.config, "--seeds", str(seed),
               "--split", args.split, "--eval-seeds", args.eval_seeds, "--tag", path.stem,
               "sampler.torch_threads=1", "learner.torch_threads=1", *STRATEGIES[name], *overrides]
        done = subprocess.run(cmd, capture_output=True, text=True)
        if done.returncode != 0:
            raise SystemExit(f"{name} seed {seed} failed (exit {done.returncode}):\n{done.stderr[-2000:]}")
        print(f"  {name} seed {seed}: {done.stdout.strip().splitlines()[-1]}", flush=True)

    with ThreadPoolExecutor(args.jobs) as pool:
        list(pool.map(one, todo))
    return files


def chart(rows: list[dict], path: Path, title: str) -> None:
    from adascope_ray.charts import Point, points_chart

    points_chart(str(path), [Point(r["strategy"], r["cost_vs_full"], r["gain"]["mean"], 2 * r["gain"]["se"],
                                   [g["mean"] for g in r["per_seed"]]) for r in rows],
                 title=title, xlabel="training cost / full's", ylabel="test reward − base, paired\n(pooled ± 2 SE; dots: seeds)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--config", default=str(ROOT / "configs" / "tiny.yaml"))
    ap.add_argument("--strategies", default=",".join(STRATEGIES))
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--split", default="test", choices=["validation", "test"])
    ap.add_argument("--eval-seeds", default="0,1,2")
    ap.add_argument("--jobs", type=int, default=3)
    ap.add_argument("--prefix", default="T_", help="result names: <prefix><strategy>_seed<s>")
    ap.add_argument("--use", action="append", default=[], help="NAME=FILE[,FILE ...]: that strategy's learning.py results")
    ap.add_argument("--no-run", action="store_true", help="only tabulate the results there; a missing one is an error")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results"))
    args, overrides = ap.parse_known_args()
    names, seeds = args.strategies.split(","), [int(s) for s in args.seeds.split(",")]
    unknown = [n for n in names if n not in STRATEGIES]
    if unknown:
        ap.error(f"unknown strategies {unknown}; choose from {list(STRATEGIES)}")
    if not {"full", "adascope"} <= set(names):
        ap.error("--strategies must include full and adascope (every row is paired against them)")
    bad = [u for u in args.use if "=" not in u or u.split("=", 1)[0] not in STRATEGIES]
    if bad:
        ap.error(f"--use takes NAME=FILE[,FILE] with NAME one of {list(STRATEGIES)}; got {bad}")
    args.use = dict(u.split("=", 1) for u in args.use)
    files = run_missing(args, overrides, names, seeds)
    sides = {n: load_side(f)[1] for n, f in files.items()}
    full_cost = np.mean([r["cost"] for r in sides["full"].values()])
    rows = []
    for n in names:
        side = {s: sides[n][s] for s in seeds if s in sides[n]}
        if len(side) < len(seeds):
            raise SystemExit(f"{n}: seeds {sorted(set(seeds) - set(side))} missing from {files[n]}")
        row = {"strategy": n, "files": [shown_config(p) for p in files[n].split(",")],
               "gain": pooled_gain(side, args.split),
               "per_seed": [side[s][args.split]["gain"]["reward"] for s in seeds],
               "cost": float(np.mean([r["cost"] for r in side.values()])),
               "window_start": float(np.mean([c["window_start"] for r in side.values() for c in r["curve"]]))}
        row["cost_vs_full"] = row["cost"] / full_cost
        for other in ("full", "adascope"):
            if other != n:
                row[f"minus_{other}"] = compare(files[other], files[n])
        rows.append(row)
    print(f"\n{args.split} split, seeds {seeds}: gain over the base and paired differences (± SE, ddof 1)")
    for r in rows:
        g = r["gain"]
        per = ", ".join(f"{x['mean']:+.3f}±{x['se']:.3f}" for x in r["per_seed"])
        vs = "; ".join(f"− {o} {r[f'minus_{o}']['pooled']['b_minus_a']:+.4f} ± {r[f'minus_{o}']['pooled']['se']:.4f} "
                       f"({r[f'minus_{o}']['pooled']['verdict']})" for o in ("full", "adascope") if f"minus_{o}" in r)
        print(f"  {r['strategy']:<14} cost {r['cost_vs_full']:.2f}  gain {g['mean']:+.4f} ± {g['se']:.4f} ({g['verdict']}) "
              f"[{per}]  {vs}")
    ada = next(r for r in rows if r["strategy"] == "adascope")
    full = next(r for r in rows if r["strategy"] == "full")
    said = verdict(ada["minus_full"]["pooled"], ada["cost_vs_full"], full["gain"])
    print("\n" + said)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    chart(rows, out / "window_strategies_protocol.png",
          f"window strategies, {shown_config(args.config)}, {args.split} split, seeds {args.seeds}")
    path = write_result("window_strategies_protocol", {"config": shown_config(args.config), "overrides": overrides,
                                                       "split": args.split, "seeds": seeds, "eval_seeds": args.eval_seeds,
                                                       "rows": rows, "verdict": said}, out)
    print(f"wrote {shown_config(path)} and window_strategies_protocol.png")


if __name__ == "__main__":
    main()

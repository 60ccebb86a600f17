"""Window strategies on the shapes world: held-out reward against training cost, several seeds.

    .venv/bin/python benchmarks/window_strategies.py [--config configs/tiny.yaml] [--seeds 0,1,2]
        [--iterations 24] [--eval-every 4] [--eval-prompts 48] [--jobs 2] [key=value ...]

Every (strategy, seed) pair is a fresh in-process run of the same config (plain Sampler,
scene_check scorer and Learner, no Ray, so the numbers are the algorithm's), with
run.seed and learner.seed set to the seed. Every eval_every iterations the current
policy samples fixed held-out world prompts (world.evaluate.heldout_prompts, which the
training prompts never include) with one fixed noise seed, and scene_check scores them.
Cost is cost_fwd_equiv summed over the training iterations (core/cost.py: rows the
sampler ran + 3 x rows the learner differentiated); evaluation is not counted (the
same for every strategy).

Each finished run is appended to window_strategies.runs.jsonl at once; --resume keeps
those and runs only the missing (strategy, seed) pairs. Prints the table, writes benchmarks/results/window_strategies.{json,csv} and
window_strategies.png (held-out reward against cumulative cost, mean over seeds with
the range shaded), with machine, config and commit.

Passing, the paper's headline: adascope reaches full's final held-out reward (means
over seeds) at <= 50 % of full's total cost, and ends higher than full. No verdict when full
itself ends no higher than the start.
"""
from __future__ import annotations

import argparse
import csv
import time
import json
from concurrent.futures import ProcessPoolExecutor, as_completed
from multiprocessing import get_context
from pathlib import Path

import numpy as np

from common import ROOT, InProcessLoop, shown_config, write_result


from adascope_ray.config import load_config  # noqa: E402
from adascope_ray.core.cost import cost_fwd_equiv  # noqa: E402

STRATEGIES = {
    "full": {"window.strategy": "full"},
    "fraction-0.25": {"window.strategy": "fraction", "window.fraction.fraction": 0.25},
    "fraction-0.5": {"window.strategy": "fraction", "window.fraction.fraction": 0.5},
    "random_window": {"window.strategy": "random_window"},
    "sliding": {"window.strategy": "sliding"},
    "adascope": {"window.strategy": "adascope"},            # the config's own (calibrated) thresholds
    # the package's default thresholds and the Theorem 2 prior, before calibration
    "adascope-uncalibrated": {"window.strategy": "adascope", "window.adascope.tau_s": 0.5,
                              "window.adascope.tau_e": 0.95, "window.adascope.eps_conv": 0.02,
                              "window.adascope.use_prior": True},
}
EVAL_SEED = 777


def heldout_reward(loop: InProcessLoop, prompts: list[str]) -> dict:
    """scene_check on the held-out prompts, sampled by the loop's current policy."""
    from adascope_ray.world.evaluate import score_sampler

    out = score_sampler(loop.sampler, prompts, EVAL_SEED)
    return {"reward": out["reward_mean"], **{k.removeprefix("check/"): v for k, v in out.items() if k.startswith("check/")}}


def run_one(config: str, overrides: list[str], strategy: str, seed: int, iterations: int, eval_every: int,
            eval_prompts: int) -> dict:
    """One fresh run; the held-out curve against cumulative cost."""
    from adascope_ray.world.evaluate import heldout_prompts

    extra = [f"{k}={v}" for k, v in STRATEGIES[strategy].items()] + [f"run.seed={seed}", f"learner.seed={seed}"]
    cfg = load_config(config, overrides + extra)
    loop, prompts = InProcessLoop(cfg), heldout_prompts(eval_prompts)
    cost, curve, train, t0 = 0.0, [], [], time.perf_counter()
    curve.append({"iteration": 0, "cost": 0.0, **heldout_reward(loop, prompts)})
    for it in range(iterations):
        st = loop.learner.update(it, [loop.score(loop.sample(it))])
        loop.publish()
        cost += cost_fwd_equiv(st.sampler_forward_rows, st.learner_forward_rows)
        train.append({"reward": st.reward_mean, "window_start": st.window_start_mean,
                      "window_length": st.window_length_mean, "steps_per_traj": st.trained_pairs / st.samples})
        if (it + 1) % eval_every == 0 or it + 1 == iterations:
            curve.append({"iteration": it + 1, "cost": cost, **heldout_reward(loop, prompts)})
    print(f"  {strategy:<14} seed {seed}: held-out {curve[0]['reward']:.3f} -> {curve[-1]['reward']:.3f}, "
          f"cost {cost:.0f}, {time.perf_counter() - t0:.0f} s", flush=True)
    return {"strategy": strategy, "seed": seed, "curve": curve, "train": train, "cost": cost,
            "wall_s": time.perf_counter() - t0}


def cost_to_reach(costs: np.ndarray, rewards: np.ndarray, target: float) -> float:
    """First cost at which the curve reaches target, linear between evaluations; inf if never."""
    for j in range(len(rewards)):
        if rewards[j] >= target:
            if j == 0:
                return float(costs[0])
            f = (target - rewards[j - 1]) / (rewards[j] - rewards[j - 1])
            return float(costs[j - 1] + f * (costs[j] - costs[j - 1]))
    return float("inf")


def verdict(rows: list[dict]) -> str:
    """PASS / FAIL against the headline; NO VERDICT when full itself did not improve on the
    start (then "reaching full's final reward" is free and says nothing)."""
    ada = next((r for r in rows if r["strategy"] == "adascope"), None)
    full = next((r for r in rows if r["strategy"] == "full"), None)
    if ada is None or full is None:
        return "NO VERDICT: needs both full and adascope"
    if not full["final_mean"] > full["start"]:
        return (f"NO VERDICT: full did not improve ({full['start']:.3f} -> {full['final_mean']:.3f}), "
                "so reaching its final reward costs nothing")
    ok = ada["reach_vs_full_cost"] <= 0.5 and ada["final_mean"] > full["final_mean"]
    return (f"adascope reaches full's final reward at {ada['reach_vs_full_cost']:.2f} of full's cost "
            f"(target <= 0.50) and ends {ada['final_mean'] - full['final_mean']:+.3f} vs full: {'PASS' if ok else 'FAIL'}")


def by_strategy(runs: list[dict]) -> dict[str, list[dict]]:
    """The runs of each strategy present, in STRATEGIES' order."""
    return {s: [r for r in runs if r["strategy"] == s] for s in STRATEGIES if any(r["strategy"] == s for r in runs)}


def curves(rs: list[dict]) -> tuple[np.ndarray, np.ndarray]:
    """Cumulative cost and held-out reward at each evaluation, one row per seed: (seeds, E) x2."""
    return (np.array([[p["cost"] for p in r["curve"]] for r in rs]),
            np.array([[p["reward"] for p in r["curve"]] for r in rs]))


def summarise(runs: list[dict]) -> list[dict]:
    by = by_strategy(runs)
    mean_curve = {s: tuple(a.mean(0) for a in curves(rs)) for s, rs in by.items()}
    full_final = mean_curve["full"][1][-1] if "full" in by else float("nan")
    full_cost = mean_curve["full"][0][-1] if "full" in by else float("nan")
    rows = []
    for s, rs in by.items():
        finals = [r["curve"][-1]["reward"] for r in rs]
        cost = float(np.mean([r["cost"] for r in rs]))
        reach = cost_to_reach(*mean_curve[s], full_final)
        rows.append({"strategy": s, "seeds": [r["seed"] for r in rs], "final_mean": float(np.mean(finals)),
                     "final_std": float(np.std(finals)), "finals": finals, "start": rs[0]["curve"][0]["reward"],
                     "cost": cost, "cost_vs_full": cost / full_cost,
                     "cost_to_full_final": reach, "reach_vs_full_cost": reach / full_cost,
                     "steps_per_traj": float(np.mean([t["steps_per_traj"] for r in rs for t in r["train"]])),
                     "window_start": float(np.mean([t["window_start"] for r in rs for t in r["train"]]))})
    return rows


def plot(runs: list[dict], path: Path, title: str) -> None:
    from adascope_ray.charts import Series, line_chart

    series = []
    for s, rs in by_strategy(runs).items():
        c, y = curves(rs)
        series.append(Series(s, list(c.mean(0) / 1e3), list(y.mean(0)), list(y.min(0)), list(y.max(0))))
    line_chart(str(path), series, title=title, xlabel="cumulative training cost (thousand forward-pass equivalents)",
               ylabel="held-out scene_check reward\n(mean over seeds, range shaded)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--config", default=str(ROOT / "configs" / "tiny.yaml"))
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results"))
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--strategies", default=",".join(STRATEGIES))
    ap.add_argument("--iterations", type=int, default=24)
    ap.add_argument("--eval-every", type=int, default=4)
    ap.add_argument("--eval-prompts", type=int, default=48)
    ap.add_argument("--jobs", type=int, default=2, help="runs in parallel, one torch thread each")
    ap.add_argument("--resume", action="store_true", help="keep the runs already in window_strategies.runs.jsonl")
    ap.add_argument("--replot", action="store_true", help="only redraw window_strategies.png from the results in --out")
    args, overrides = ap.parse_known_args()
    if args.replot:
        res = json.loads((Path(args.out) / "window_strategies.json").read_text())
        plot(res["runs"], Path(args.out) / "window_strategies.png",
             f"window strategies on {res['config']}, seeds {res['seeds']}, {res['iterations']} iterations")
        return
    unknown = [s for s in args.strategies.split(",") if s not in STRATEGIES]
    if unknown:
        ap.error(f"unknown strategies {unknown}; choose from {list(STRATEGIES)}")
    if args.jobs > 1:
        overrides = ["sampler.torch_threads=1", "learner.torch_threads=1"] + overrides
    load_config(args.config, overrides)  # a bad config fails here, before any run starts
    tasks = [(args.config, overrides, s, int(seed), args.iterations, args.eval_every, args.eval_prompts)
             for seed in args.seeds.split(",") for s in args.strategies.split(",")]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    log = out / "window_strategies.runs.jsonl"       # each finished run at once: nothing lost if stopped
    done = [json.loads(x) for x in log.read_text().splitlines()] if args.resume and log.is_file() else []
    have = {(r["strategy"], r["seed"]) for r in done}
    todo = [t for t in tasks if (t[2], t[3]) not in have]
    if not args.resume:
        log.write_text("")
    print(f"{len(todo)} runs to do ({len(done)} kept from {log.name}), {args.jobs} at a time", flush=True)
    runs = list(done)
    with ProcessPoolExecutor(args.jobs, mp_context=get_context("spawn")) as pool:
        for fut in as_completed([pool.submit(run_one, *t) for t in todo]):
            runs.append(fut.result())
            with open(log, "a") as f:
                f.write(json.dumps(runs[-1]) + "\n")
    order = {(t[2], t[3]): i for i, t in enumerate(tasks)}          # (strategy, seed) -> position
    runs = sorted((r for r in runs if (r["strategy"], r["seed"]) in order), key=lambda r: order[(r["strategy"], r["seed"])])
    rows = summarise(runs)
    print(f"\n{'strategy':<23}{'start':>7}{'final':>8}{'+-':>7}{'cost':>9}{'vs full':>8}{'reach full':>11}{'steps':>7}")
    for r in rows:
        reach = f"{r['reach_vs_full_cost']:.2f}" if np.isfinite(r["reach_vs_full_cost"]) else "never"
        print(f"{r['strategy']:<23}{r['start']:>7.3f}{r['final_mean']:>8.3f}{r['final_std']:>7.3f}{r['cost']:>9.0f}"
              f"{r['cost_vs_full']:>8.2f}{reach:>11}{r['steps_per_traj']:>7.1f}")
    said = verdict(rows)
    print("\n" + said)
    shown = shown_config(args.config)
    plot(runs, out / "window_strategies.png", f"window strategies on {shown}, seeds {args.seeds}, {args.iterations} iterations")
    with open(out / "window_strategies.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["strategy", "seed", "iteration", "cost", "heldout_reward"])
        for r in runs:
            for p in r["curve"]:
                w.writerow([r["strategy"], r["seed"], p["iteration"], f"{p['cost']:.0f}", f"{p['reward']:.4f}"])
    path = write_result("window_strategies", {"config": shown, "overrides": overrides, "seeds": args.seeds,
                                              "iterations": args.iterations, "eval_every": args.eval_every,
                                              "eval_prompts": args.eval_prompts, "summary": rows, "verdict": said, "runs": runs}, out)
    print(f"wrote {path}, window_strategies.csv and window_strategies.png")


if __name__ == "__main__":
    main()

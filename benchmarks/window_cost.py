"""Per-iteration cost of each window strategy on one config, side by side.

    .venv/bin/python benchmarks/window_cost.py [--config CONFIG] [--iterations N] [key=value ...]

Runs the plain Sampler and Learner in one process (no Ray, so the numbers are the
algorithm's, not the service's), one fresh learner per strategy from the same seed,
and prints for each: cost_fwd_equiv per iteration (counted rows, see core/cost.py),
learner update seconds, trained steps per trajectory and the mean reward. Writes
benchmarks/results/window_cost.json with the machine, config and commit.
Passing means nothing here: it reports the measured ratio adascope/full.
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from common import ROOT, InProcessLoop, shown_config, write_result


from adascope_ray.config import load_config  # noqa: E402
from adascope_ray.core.cost import cost_fwd_equiv  # noqa: E402

STRATEGIES = ["full", "fraction", "random_window", "sliding", "adascope"]


def run_strategy(cfg, strategy: str, iterations: int, warmup: int = 0) -> dict:
    """Iterations of one strategy; the means leave out the first `warmup` (device warm-up)."""
    cfg = cfg.model_copy(update={"window": cfg.window.model_copy(update={"strategy": strategy})})
    loop = InProcessLoop(cfg)
    rows = []
    for it in range(iterations):
        t0 = time.perf_counter()
        r = loop.sample(it)
        t1 = time.perf_counter()
        st = loop.learner.update(it, [loop.score(r)])
        t2 = time.perf_counter()
        loop.publish()
        rows.append({"cost": cost_fwd_equiv(st.sampler_forward_rows, st.learner_forward_rows),
                     "sampler_rows": st.sampler_forward_rows, "learner_rows": st.learner_forward_rows,
                     "sample_s": t1 - t0, "update_s": t2 - t1, "steps_per_traj": st.trained_pairs / st.samples,
                     "reward": st.reward_mean, "window_start": st.window_start_mean})
    kept = rows[warmup:]
    mean = lambda k: float(np.mean([r[k] for r in kept]))  # noqa: E731
    return {"strategy": strategy, "iterations": iterations, **{k: mean(k) for k in rows[0]},
            "reward_first": rows[0]["reward"], "reward_last": rows[-1]["reward"]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--config", default=str(ROOT / "configs" / "tiny_jpeg.yaml"), help="run config (default configs/tiny_jpeg.yaml)")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results"), help="folder for the JSON result")
    ap.add_argument("--iterations", type=int, default=3)
    ap.add_argument("--strategies", default=",".join(STRATEGIES))
    ap.add_argument("--warmup", type=int, default=0, help="leave the first N iterations out of the means (under "
                    "window.placement=sampler the first iteration samples every step)")
    ap.add_argument("--tag", default="window_cost", help="result name")
    args, overrides = ap.parse_known_args()
    cfg = load_config(args.config, overrides)
    shown = shown_config(args.config)
    results = [run_strategy(cfg, s, args.iterations, args.warmup) for s in args.strategies.split(",")]
    full = next((r for r in results if r["strategy"] == "full"), None)
    print(f"\n{'strategy':<14}{'cost/iter':>10}{'vs full':>9}{'steps/traj':>11}{'sample s':>9}{'update s':>9}{'reward':>9}")
    for r in results:
        ratio = f"{r['cost'] / full['cost']:.2f}" if full else "-"
        print(f"{r['strategy']:<14}{r['cost']:>10.0f}{ratio:>9}{r['steps_per_traj']:>11.2f}"
              f"{r['sample_s']:>9.2f}{r['update_s']:>9.2f}{r['reward']:>9.4f}")
    path = write_result(args.tag, {"config": shown, "overrides": overrides, "warmup": args.warmup, "results": results},
                        args.out)
    print(f"\nwrote {path} ({shown} {' '.join(overrides)})")


if __name__ == "__main__":
    main()

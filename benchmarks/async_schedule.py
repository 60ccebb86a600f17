"""The asynchronous schedule (learner.max_staleness = 1) against the synchronous one
(0), side by side in one run: iteration time, and held-out reward at equal samples.

    .venv/bin/python benchmarks/async_schedule.py [--config configs/tiny.yaml]
        [--iterations 10] [--order 0,1,0,1,0,1] [--eval-prompts 32] [--eval-seeds 0,1,2] [key=value ...]

Each run is `adascope-ray train` on a local Ray cluster of 2 CPUs: one sampler and
one learner actor with one torch thread each, rewards in Serve. The runs go in
`--order` (S values, alternating, so that the machine's drift between runs shows:
each pair of neighbouring runs gives a ratio too). Iteration time is the median over
iterations after the first two (the asynchronous schedule samples nothing ahead of
iteration 0); the headline ratio is the median of S = 1's runs over S = 0's. Quality: every run
evaluates the test split before training and after the last update (same captions,
same noise), and the last evaluations of S = 1 and S = 0 are paired sample for sample
(difference ± standard error, ddof = 1; "no difference" under 2 SE). approx_kl,
clipfrac and the importance weights are reported beside them. Target (the issue's):
async / sync iteration time <= 0.65. Writes benchmarks/results/async_schedule.json.
"""
from __future__ import annotations

import argparse
import json
import statistics
import tempfile
from pathlib import Path

import numpy as np

from common import ROOT, shown_config, write_result


from adascope_ray.core.paired import paired_difference  # noqa: E402

SETTINGS = ["sampler.torch_threads=1", "learner.torch_threads=1", "sampler.num_cpus=1", "learner.num_cpus=1",
            "cluster.num_cpus=2", "run.grid_every=1000", "run.checkpoint_every=0", "eval.world_split=test",
            "eval.grid_prompts=0"]
PHASES = ("rollout", "update", "drain", "publish")


def one_run(config: str, overrides: list[str], out: Path, name: str) -> dict:
    from adascope_ray.cli import main

    rc = main(["train", config, "--no-progress", f"run.output_dir={out}", f"run.name={name}", *overrides])
    if rc != 0:
        raise SystemExit(f"run {name} failed (exit {rc})")
    rows = [json.loads(line) for line in (out / name / "metrics.jsonl").read_text().splitlines()]
    evals = [json.loads(line) for line in (out / name / "eval.jsonl").read_text().splitlines()]
    steady = rows[2:]
    med = lambda key: statistics.median(r.get(key, 0.0) for r in steady)  # noqa: E731
    return {
        "iteration_s": med("iteration_s"),
        "phases_s": {p: med(f"time/{p}") for p in PHASES},
        "iteration_s_each": [round(r["iteration_s"], 3) for r in rows],
        "sample_s": med("time/sample_s"), "learner_update_s": med("time/learner_update_s"),
        "learner_proximal_s": med("time/learner_proximal_s"),
        "approx_kl": float(np.mean([r["approx_kl"] for r in rows])),
        "clipfrac": float(np.mean([r["clipfrac"] for r in rows])),
        "staleness_mean": float(np.mean([r["off_policy/staleness_mean"] for r in rows])),
        "is_weight_mean": float(np.mean([r["off_policy/is_weight_mean"] for r in rows if "off_policy/is_weight_mean" in r] or [1.0])),
        "is_weight_max": float(max([r["off_policy/is_weight_max"] for r in rows if "off_policy/is_weight_max" in r] or [1.0])),
        "training_reward_first_last": [rows[0]["reward_mean"], rows[-1]["reward_mean"]],
        "eval_base": evals[0]["total"], "eval_last": evals[-1]["total"], "eval_updates": evals[-1]["updates"],
        "samples": sum(r["samples"] for r in rows),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--config", default=str(ROOT / "configs" / "tiny.yaml"))
    ap.add_argument("--iterations", type=int, default=10)
    ap.add_argument("--order", default="0,1,0,1,0,1", help="max_staleness of each run, in the order they run")
    ap.add_argument("--eval-prompts", type=int, default=32)
    ap.add_argument("--eval-seeds", default="0,1,2")
    args, extra = ap.parse_known_args()
    order = [int(s) for s in args.order.split(",")]
    common = [*SETTINGS, f"run.iterations={args.iterations}", f"eval.every={args.iterations}",
              f"eval.num_prompts={args.eval_prompts}", f"eval.seeds=[{args.eval_seeds}]", *extra]
    runs: list[dict] = []
    with tempfile.TemporaryDirectory() as tmp:
        for n, s in enumerate(order):
            print(f"run {n + 1}/{len(order)}: learner.max_staleness={s}", flush=True)
            r = one_run(args.config, [*common, f"learner.max_staleness={s}"], Path(tmp), f"s{s}_{n}")
            runs.append({"max_staleness": s, **r})
            print(f"  iteration {r['iteration_s']:.2f} s (median), phases "
                  + ", ".join(f"{p} {v:.2f}" for p, v in r["phases_s"].items()), flush=True)
    by = {s: [r for r in runs if r["max_staleness"] == s] for s in (0, 1)}
    t = {s: statistics.median(r["iteration_s"] for r in by[s]) for s in (0, 1)}
    ratio = t[1] / t[0]
    # each pair of neighbouring runs of different S: the machine's drift between runs shows here
    pairs = [runs[i + 1]["iteration_s"] / runs[i]["iteration_s"] if runs[i]["max_staleness"] == 0
             else runs[i]["iteration_s"] / runs[i + 1]["iteration_s"]
             for i in range(len(runs) - 1) if runs[i]["max_staleness"] != runs[i + 1]["max_staleness"]]
    verdict = "PASS" if ratio <= 0.65 else "FAIL"
    # quality at equal samples: the first S = 1 run's last evaluation against the first S = 0 run's
    a, b = np.asarray(by[0][0]["eval_last"]), np.asarray(by[1][0]["eval_last"])
    d = paired_difference(a, b)  # b − a: async − sync
    gains = {s: paired_difference(by[s][0]["eval_base"], by[s][0]["eval_last"]) for s in (0, 1)}
    as_json = lambda p: {"mean": p.mean, "se": p.se, "n": p.n, "verdict": p.verdict()}  # noqa: E731
    print(f"\n{'S':<3}{'iteration s':>12}" + "".join(f"{p:>10}" for p in PHASES) + f"{'clipfrac':>10}{'w mean':>8}{'w max':>7}")
    for r in runs:
        print(f"{r['max_staleness']:<3}{r['iteration_s']:>12.2f}" + "".join(f"{r['phases_s'][p]:>10.2f}" for p in PHASES)
              + f"{r['clipfrac']:>10.3f}{r['is_weight_mean']:>8.4f}{r['is_weight_max']:>7.4f}")
    print(f"\nasync / sync iteration time: {ratio:.3f} (target <= 0.65): {verdict}; neighbouring runs: "
          + ", ".join(f"{p:.3f}" for p in pairs))
    for s in (0, 1):
        print(f"test-split reward after {by[s][0]['eval_updates']} updates, S = {s}: gain over base "
              f"{gains[s].mean:+.3f} ± {gains[s].se:.3f} ({gains[s].verdict()})")
    print(f"S = 1 − S = 0 at equal samples ({a.size} paired test samples): {d.mean:+.3f} ± {d.se:.3f} ({d.verdict()})")
    path = write_result("async_schedule", {
        "config": shown_config(args.config), "overrides": common, "order": order, "runs": runs,
        "iteration_s": {"sync": t[0], "async": t[1]}, "ratio": ratio, "neighbour_ratios": pairs, "target": 0.65, "verdict": verdict,
        "quality": {"async_minus_sync": as_json(d), "gain_over_base": {str(s): as_json(gains[s]) for s in (0, 1)}}})
    print(f"wrote {path.relative_to(ROOT)}")


if __name__ == "__main__":
    main()

"""The Ray service against a single-process loop doing identical work, same config.

    .venv/bin/python benchmarks/overhead.py [--iterations 6] [--config configs/tiny_jpeg.yaml] [--async] [key=value ...]

Single process: the plain Sampler, the reward scorers and the Learner called in a
loop (sample, score, update, publish). Service: `adascope-ray train` on a local Ray
cluster (sampler and learner actors, rewards in Serve, weights through the object
store). Per-iteration wall time is compared by the median over iterations after the
first (warm-up), with the phases each side spends it in. Target: service / single
≤ 1.10 (the issue's bar); the script prints PASS or FAIL against it.

--async: the service runs the asynchronous schedule (learner.max_staleness = 1) with
one torch thread for the sampler and one for the learner, so the two overlap on two
cores; the single process keeps the config's threads (every phase on both cores, one
after the other). Target: the service's samples per second >= 1.5x the single
process's, i.e. service / single iteration time <= 1 / 1.5.
"""
from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

from common import ROOT, InProcessLoop, shown_config, write_result


from adascope_ray.config import load_config  # noqa: E402


def single_process(cfg) -> list[dict]:
    loop = InProcessLoop(cfg)
    rows = []
    for it in range(cfg.run.iterations):
        t = [time.perf_counter()]
        r = loop.sample(it)
        t.append(time.perf_counter())
        scored = loop.score(r)
        t.append(time.perf_counter())
        loop.learner.update(it, [scored])
        t.append(time.perf_counter())
        loop.publish()
        t.append(time.perf_counter())
        rows.append({"iteration_s": t[-1] - t[0], "sample": t[1] - t[0], "score": t[2] - t[1],
                     "update": t[3] - t[2], "publish": t[4] - t[3]})
    return rows


def service(config: str, overrides: list[str], out: Path) -> list[dict]:
    from adascope_ray.cli import main

    rc = main(["train", config, "--no-progress", f"run.output_dir={out}", "run.name=overhead", *overrides])
    if rc != 0:
        raise SystemExit(f"the service run failed (exit {rc})")
    rows = [json.loads(line) for line in (out / "overhead" / "metrics.jsonl").read_text().splitlines()]
    return [{"iteration_s": r["iteration_s"], "rollout": r["time/rollout"], "sample": r["time/sample_s"],
             "score": r["time/score_s"], "update": r["time/update"], "drain": r.get("time/drain", 0.0),
             "publish": r["time/publish"]} for r in rows]


def medians(rows: list[dict]) -> dict:
    return {k: statistics.median(r[k] for r in rows[1:]) for k in rows[0]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--config", default=str(ROOT / "configs" / "tiny_jpeg.yaml"))
    ap.add_argument("--iterations", type=int, default=6)
    ap.add_argument("--async", dest="asynchronous", action="store_true",
                    help="the service under learner.max_staleness=1, one thread per role")
    args, overrides = ap.parse_known_args()
    overrides = [f"run.iterations={args.iterations}", "run.grid_every=1000", "run.checkpoint_every=0", "eval.every=0", *overrides]
    served_overrides = overrides + (["learner.max_staleness=1", "sampler.torch_threads=1", "learner.torch_threads=1"]
                                    if args.asynchronous else [])
    cfg = load_config(args.config, overrides)
    single = medians(single_process(cfg))
    with tempfile.TemporaryDirectory() as tmp:
        served = medians(service(args.config, served_overrides, Path(tmp)))
    ratio = served["iteration_s"] / single["iteration_s"]
    print(f"\n{'phase':<12}{'single s':>10}{'service s':>11}")
    for k in ("sample", "score", "rollout", "update", "drain", "publish", "iteration_s"):
        print(f"{k:<12}{single.get(k, float('nan')):>10.3f}{served.get(k, float('nan')):>11.3f}")
    target = 1 / 1.5 if args.asynchronous else 1.10
    verdict = "PASS" if ratio <= target else "FAIL"
    print(f"\nservice / single-process iteration time: {ratio:.3f} (target <= {target:.3f}): {verdict}"
          + (f"; samples per second {1 / ratio:.2f}x the single process's" if args.asynchronous else ""))
    shown = shown_config(args.config)
    path = write_result("overhead_async" if args.asynchronous else "overhead",
                        {"config": shown, "overrides": overrides, "service_overrides": served_overrides,
                         "single_process": single, "service": served, "ratio": ratio, "target": target,
                         "verdict": verdict})
    print(f"wrote {path.relative_to(ROOT)}")


if __name__ == "__main__":
    main()

"""Soak: a long tiny run on a local Ray cluster with a fault injected every N
iterations, cycling through: a sampler killed, a reward replica killed, the learner
killed (the run stops with exit code 3; --resume continues it), the driver process
killed with SIGKILL (--resume continues it). The driver is a separate process
(`python -m adascope_ray.cli`) joined to this script's cluster; faults are injected
from here by actor name. Counts iterations, lost samples and metric gaps.

    .venv/bin/python benchmarks/soak.py [--iterations 50] [--every 10] [--max-staleness S]

With --max-staleness 1 the run uses the asynchronous schedule (learner.max_staleness):
a fault then lands while the next iteration's rollouts are in flight.
Passing: every iteration 0..N-1 appears exactly once in metrics.jsonl (no gaps, no
duplicates), every iteration has all its samples, and the last driver exits with 0.
Writes benchmarks/results/soak.json with the machine, config and commit.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import ROOT, write_result

OVERRIDES = ["sampling.num_steps=4", "data.prompts_per_iteration=2", "data.group_size=2",
             "run.checkpoint_every=5", "run.grid_every=1000", "sampler.max_restarts=100"]


def rows(run: Path) -> list[dict]:
    p = run / "metrics.jsonl"
    return [json.loads(x) for x in p.read_text().splitlines()] if p.exists() else []


class Driver:
    """One `adascope-ray train` process joined to the soak's cluster."""

    def __init__(self, argv, address: str, log: Path):
        env = {**os.environ, "RAY_ADDRESS": address}
        self.log = open(log, "a")
        self.proc = subprocess.Popen([sys.executable, "-m", "adascope_ray.cli", *argv], env=env, cwd=ROOT,
                                     stdout=self.log, stderr=subprocess.STDOUT)

    def wait_rows(self, run: Path, n: int) -> bool:
        while len(rows(run)) < n and self.proc.poll() is None:
            time.sleep(0.2)
        return len(rows(run)) >= n

    def wait(self) -> int:
        rc = self.proc.wait()
        self.log.close()
        return rc


def soak(iterations: int, every: int, out_dir: Path, overrides: list[str]) -> dict:
    import ray
    from ray import serve

    name = "soak"
    argv = ["train", str(ROOT / "configs" / "tiny_jpeg.yaml"), "--no-progress", f"run.output_dir={out_dir}",
            f"run.name={name}", f"run.iterations={iterations}", *overrides]
    resume = argv + ["--resume", str(out_dir / name)]
    run_dir, log = out_dir / name, out_dir / "drivers.log"
    ctx = ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, namespace="adascope")
    address = ctx.address_info["gcs_address"]
    faults, exit_codes, t0 = [], [], time.perf_counter()
    drv = Driver(argv, address, log)
    kinds = ["sampler", "reward_replica", "learner", "driver"]
    for j, at in enumerate(range(every, iterations, every)):
        kind = kinds[j % len(kinds)]
        if not drv.wait_rows(run_dir, at):
            break
        if kind == "sampler":
            ray.kill(ray.get_actor(f"{name}:sampler:0"), no_restart=False)
        elif kind == "reward_replica":
            comp = serve.get_deployment_handle("reward_jpeg_compressibility", "adascope-rewards")
            ray.kill(ray.get_actor(comp.actor_name.remote().result(timeout_s=60), namespace="serve"), no_restart=True)
        elif kind == "learner":
            ray.kill(ray.get_actor(f"{name}:learner"))
            exit_codes.append(drv.wait())
            drv = Driver(resume, address, log)
        else:
            drv.proc.kill()  # SIGKILL: no teardown, no checkpoint on the way out
            exit_codes.append(drv.wait())
            time.sleep(2)  # its actors go with their owner
            drv = Driver(resume, address, log)
        faults.append({"kind": kind, "after_iterations": at})
        print(f"  fault {kind:15s} injected after {at} iterations", flush=True)
    exit_codes.append(drv.wait())
    wall = time.perf_counter() - t0
    ray.shutdown()

    got = rows(run_dir)
    its = [r["iteration"] for r in got]
    per_it = 2 * 2
    missing = sorted(set(range(iterations)) - set(its))
    return {
        "iterations_expected": iterations, "iterations_logged": len(its), "gaps": missing,
        "duplicates": len(its) - len(set(its)),
        "lost_samples": sum(per_it - r["samples"] for r in got) + per_it * len(missing),
        "sampler_restarts": max((r.get("sampler_restarts", 0) for r in got), default=0),
        "exit_codes": exit_codes, "faults": faults, "wall_s": round(wall, 1),
        "final_reward_mean": got[-1]["reward_mean"] if got else None,
        "staleness_mean": sum(r.get("off_policy/staleness_mean", 0.0) for r in got) / max(len(got), 1),
        "_log_tail": log.read_text()[-3000:] if log.exists() else "",
    }


def main_cli() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--iterations", type=int, default=50)
    ap.add_argument("--every", type=int, default=10)
    ap.add_argument("--max-staleness", type=int, default=0, help="learner.max_staleness (0: the synchronous loop)")
    a = ap.parse_args()
    overrides = OVERRIDES + ([f"learner.max_staleness={a.max_staleness}"] if a.max_staleness else [])
    with tempfile.TemporaryDirectory() as tmp:
        res = soak(a.iterations, a.every, Path(tmp), overrides)
    ok = not res["gaps"] and not res["duplicates"] and not res["lost_samples"] and res["exit_codes"][-1] == 0
    res["passed"] = ok
    tail = res.pop("_log_tail")
    if not ok:
        print(f"drivers' output (end):\n{tail}")
    print(f"\niterations {res['iterations_logged']}/{res['iterations_expected']}  gaps {res['gaps']}  "
          f"duplicates {res['duplicates']}  lost samples {res['lost_samples']}  sampler restarts "
          f"{res['sampler_restarts']}  exit codes {res['exit_codes']}  wall {res['wall_s']} s  "
          f"-> {'PASS' if ok else 'FAIL'}")
    tag = "soak" if not a.max_staleness else f"soak_staleness{a.max_staleness}"
    write_result(tag, {"config": "configs/tiny_jpeg.yaml", "overrides": overrides, "result": res})
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main_cli()

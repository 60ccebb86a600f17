"""Images per GPU per second of a cluster, from measured per-role times.

    .venv/bin/python benchmarks/throughput_model.py [--measured benchmarks/results/real_size_sd15.json]
        [--gpus 8] [--batch 256] [--flops benchmarks/results/denoiser_flops.json]

A model, not a measurement: it takes the per-trajectory times one GPU measured for each
role (benchmarks/real_size.py: SD1.5 at 512 px, 50 steps, random weights of the real
sizes; the reward model; the weights' publication) and works out an iteration of
`batch` trajectories on N sampler GPUs and M learner GPUs (N + M = gpus):

    T_s = batch · t_s / N           sampling, the prompts split evenly over N samplers
    T_r = batch · t_r / N           scoring, one reward replica beside each sampler
    T_u = batch · t_u / M           update, data-parallel over M ranks (ideal scaling;
                                    a LoRA gradient all-reduce is a few MB, left out)
    T_p                             publishing the new weights
    synchronous:   T = T_s + T_r + T_u + T_p
    asynchronous:  T = max(T_s + T_r, T_u) + T_p     (learner.max_staleness = 1)
    images / GPU / s = batch / (T · gpus)

and, for comparison, every GPU doing both roles in turn (colocated, no overlap
possible on one device): T = batch · (t_s + t_r + t_u) / gpus + T_p. For each window
(full, adascope) it prints the best split, which role bounds it, and the figure.
With --flops it adds the same tables for SD3.5 Medium and Large sizes, the sampling
and update times scaled by the operations of one denoiser forward pass against
SD1.5's (denoiser_flops.py), at the same utilisation and step count; the reward and
publication times are kept. Writes benchmarks/results/throughput_model.json.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from common import ROOT, write_result


def per_trajectory(measured: dict) -> dict:
    """Seconds per trajectory of each role, from real_size.py's result."""
    w = {r["strategy"]: r for r in measured["window"]}
    n = 16  # trajectories per iteration in real_size.py (2 prompts x 8)
    h14 = max((s for s in measured["scorer"] if s["clip"] == "h14"), key=lambda s: s["batch"])
    lora = next(p for p in measured["publish"] if p["trainable"].startswith("LoRA r=4"))
    return {"sample_s": w["full"]["sample_s"] / n,
            "score_s": 1.0 / h14["images_per_s"],
            "update_s": {k: w[k]["update_s"] / n for k in ("full", "adascope")},
            "publish_s": lora["publish_s"] + lora["set_weights_s"]}


def iteration_s(t: dict, window: str, batch: int, samplers: int, learners: int, schedule: str) -> tuple[float, str]:
    roll = batch * (t["sample_s"] + t["score_s"]) / samplers
    upd = batch * t["update_s"][window] / learners
    if schedule == "sync":
        return roll + upd + t["publish_s"], "sampling" if roll > upd else "update"
    return max(roll, upd) + t["publish_s"], "sampling" if roll > upd else "update"


def table(t: dict, g: int, b: int) -> list[dict]:
    """For each window: colocated, and the best split for each schedule."""
    rows = []
    for window in ("full", "adascope"):
        colo = b * (t["sample_s"] + t["score_s"] + t["update_s"][window]) / g + t["publish_s"]
        rows.append({"window": window, "schedule": "colocated", "samplers": g, "learners": g,
                     "iteration_s": colo, "images_per_gpu_s": b / (colo * g), "bound": "both, in turn"})
        for schedule in ("sync", "async"):
            best = min(((iteration_s(t, window, b, n, g - n, schedule), n) for n in range(1, g)), key=lambda x: x[0][0])
            (sec, bound), n = best
            rows.append({"window": window, "schedule": schedule, "samplers": n, "learners": g - n,
                         "iteration_s": sec, "images_per_gpu_s": b / (sec * g), "bound": bound})
    return rows


def scaled(t: dict, ratio: float) -> dict:
    """Role times of a denoiser `ratio` times SD1.5's operations a forward pass, at the same
    utilisation: sampling and update scale with it; the reward and a LoRA's publication do not."""
    return {**t, "sample_s": t["sample_s"] * ratio, "update_s": {k: v * ratio for k, v in t["update_s"].items()}}


def show(rows: list[dict]) -> None:
    print(f"{'window':<9}{'schedule':<11}{'samplers+learners':>18}{'iteration s':>13}{'img/GPU/s':>11}  bound by")
    for r in rows:
        split = "all, in turn" if r["schedule"] == "colocated" else f"{r['samplers']}+{r['learners']}"
        print(f"{r['window']:<9}{r['schedule']:<11}{split:>18}{r['iteration_s']:>13.2f}"
              f"{r['images_per_gpu_s']:>11.2f}  {r['bound']}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--measured", default=str(ROOT / "benchmarks" / "results" / "real_size_sd15.json"))
    ap.add_argument("--flops", default=None, help="denoiser_flops.py's result: add FLOP-scaled SD3.5-size tables")
    ap.add_argument("--gpus", type=int, default=8)
    ap.add_argument("--batch", type=int, default=256)
    args = ap.parse_args()
    measured = json.loads(Path(args.measured).read_text())
    t = per_trajectory(measured)
    g, b = args.gpus, args.batch
    print(f"per trajectory on one {measured['machine'].get('gpu', 'GPU')}: sample {t['sample_s']:.3f} s, "
          f"score {t['score_s']:.4f} s, update full {t['update_s']['full']:.3f} s / adascope "
          f"{t['update_s']['adascope']:.3f} s; publish {t['publish_s']:.3f} s a version\n")
    rows = table(t, g, b)
    show(rows)
    result = {"measured": Path(args.measured).name, "measured_commit": measured["commit"],
              "gpus": g, "batch": b, "per_trajectory_s": t, "rows": rows}
    if args.flops:  # a model on a model: the SD1.5 times scaled by the operations of a forward pass
        result["flop_scaled"] = []
        for f in json.loads(Path(args.flops).read_text())["rows"]:
            if f["model"] == "sd15" and f["px"] == 512:
                continue
            print(f"\n{f['model']} at {f['px']} px: {f['ratio_to_sd15_512']:.2f}x SD1.5's operations at 512 px a forward pass")
            rows_f = table(scaled(t, f["ratio_to_sd15_512"]), g, b)
            show(rows_f)
            result["flop_scaled"].append({"model": f["model"], "px": f["px"], "ratio": f["ratio_to_sd15_512"], "rows": rows_f})
    path = write_result("throughput_model", result)
    print(f"\nwrote {path.relative_to(ROOT)}")


if __name__ == "__main__":
    main()

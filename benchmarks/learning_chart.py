"""Which checks moved? A chart of learning.py results, one or more files of the same setting.

    .venv/bin/python benchmarks/learning_chart.py RESULT.json [RESULT.json ...] --out PNG [--window 10]

Left: each check's training reward over the run (the rollouts' own captions and noise,
a running mean over --window iterations), one line per training seed. Right: each
check's paired gain on the held-out split and on the training captions, trained − base,
one point per seed with ±2 standard errors (the verdict's bar: a bar that crosses zero
is no difference).
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from common import ROOT, shown_config


def running_mean(x: np.ndarray, w: int) -> np.ndarray:
    out = np.full(len(x), np.nan)  # (n,) NaN until a full window
    for i in range(len(x)):
        seg = x[max(0, i - w + 1): i + 1]
        out[i] = np.nanmean(seg) if i >= w - 1 and np.isfinite(seg).any() else np.nan
    return out


def main() -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("results", nargs="+")
    ap.add_argument("--out", required=True)
    ap.add_argument("--window", type=int, default=10)
    args = ap.parse_args()
    files = [json.loads(Path(f).read_text()) for f in args.results]
    runs = [r for f in files for r in f["runs"]]
    split = files[0]["split"].split(",")[-1]  # the reporting split when a run scored two
    checks = [k for k in runs[0][split]["gain"] if k.startswith("scene_check/") or k == "reward"]
    moving = [k for k in checks if k == "reward" or any(abs(r[split]["gain"][k]["mean"]) > 0 or r[split]["gain"][k]["se"] > 0
                                                       for r in runs)]
    fig, (ax_l, ax_r) = plt.subplots(1, 2, figsize=(12, 4.6), gridspec_kw={"width_ratios": [1.35, 1]})
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for j, k in enumerate(moving):
        name = k.split("/")[-1]
        key = "reward" if k == "reward" else f"components/{k}"
        for i, r in enumerate(runs):
            if key not in r["curve"][0]:
                continue
            y = running_mean(np.array([c.get(key, np.nan) for c in r["curve"]], float), args.window)
            ax_l.plot(np.arange(1, len(y) + 1), y, color=colours[j % len(colours)], lw=2 if k == "reward" else 1.2,
                      alpha=0.85, label=name if i == 0 else None)
    ax_l.set_xlabel("iteration")
    ax_l.set_ylabel(f"training reward (running mean of {args.window})")
    ax_l.set_title("each check on the training rollouts")
    ax_l.legend(fontsize=8, loc="lower left")
    ax_l.grid(alpha=0.3)
    for j, where in enumerate([split, "train"]):
        for i, r in enumerate(runs):
            xs = np.arange(len(moving)) + (j * 0.4 - 0.2) + (i - (len(runs) - 1) / 2) * 0.08
            m = np.array([r[where]["gain"][k]["mean"] for k in moving])
            se = np.array([r[where]["gain"][k]["se"] for k in moving])
            ax_r.errorbar(xs, m, yerr=2 * se, fmt="o" if j == 0 else "s", ms=4, capsize=2, color=colours[j],
                          label=(f"{split} split" if j == 0 else "training captions") if i == 0 else None)
    ax_r.axhline(0, color="black", lw=0.8)
    ax_r.set_xticks(np.arange(len(moving)))
    ax_r.set_xticklabels([k.split("/")[-1] for k in moving])
    ax_r.set_ylabel("paired gain over the base (±2 SE)")
    ax_r.set_title(f"held-out and training captions, {len(runs)} seeds")
    ax_r.legend(fontsize=8)
    ax_r.grid(alpha=0.3, axis="y")
    shown = [o for o in files[0]["overrides"] if "torch_threads" not in o]  # what changes the setting
    fig.suptitle(f"{files[0]['config']} {' '.join(shown)}, {files[0]['iterations']} iterations", fontsize=10)
    fig.tight_layout()
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    print(f"wrote {shown_config(out) if out.resolve().is_relative_to(ROOT) else out}")


if __name__ == "__main__":
    main()

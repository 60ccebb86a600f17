"""One setting's gain over the base, pooled over the training seeds of several result files.

    .venv/bin/python benchmarks/pool_runs.py A.json[,A2.json ...] [--set validation|test|train] [--selected]

benchmarks/learning.py pools the seeds of one invocation; seeds run apart (or added
later) are in separate files. This pools them the same way: every sample of every seed
is a pair (the base and the trained checkpoint on the same caption and noise), the
paired difference and its standard error (ddof = 1) and verdict come from
core/paired.py, overall and per check, with each seed's own gain beside it, and overall
with each caption as one unit (`clustered_difference`: would other captions of the split
gain?). The files
must agree on captions, noise seeds and iterations, and a training seed may appear once.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from compare_runs import caption_ids, load_side  # noqa: E402

from adascope_ray.core.paired import clustered_difference, paired_difference  # noqa: E402


def pooled(paths: str, which: str, selected: bool = False) -> dict:
    """{"seeds": {seed: PairedDifference}, "total": PairedDifference, "checks": {name: PairedDifference},
    "by_caption": PairedDifference with each caption one unit}."""
    _, runs = load_side(paths)
    evals = {s: (r["selected"] if selected else r)[which] for s, r in sorted(runs.items())}
    for s, e in evals.items():
        if "base_total" not in e:
            raise SystemExit(f"training seed {s} has no {which} evaluation")
    cat = lambda key, sub=None: np.concatenate([np.ravel(e[key] if sub is None else e[key][sub])  # noqa: E731
                                                for e in evals.values()])
    per_seed = {s: paired_difference(np.ravel(e["base_total"]), np.ravel(e["final_total"])) for s, e in evals.items()}
    checks = {k: paired_difference(cat("base_components", k), cat("final_components", k))
              for k in next(iter(evals.values())).get("base_components", {})}
    base, final = cat("base_total"), cat("final_total")
    captions = np.concatenate([caption_ids(e["base_total"]) for e in evals.values()])
    return {"seeds": per_seed, "total": paired_difference(base, final), "checks": checks,
            "by_caption": clustered_difference(base, final, captions)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("files", help="learning.py results of one setting, comma-separated")
    ap.add_argument("--set", default="test", choices=["validation", "test", "train"])
    ap.add_argument("--selected", action="store_true", help="the weights selected on validation (--select-every runs)")
    a = ap.parse_args(argv)
    out = pooled(a.files, a.set, a.selected)
    print(f"gain over the base, {'selected' if a.selected else 'final'} weights, {a.set} captions, paired:")
    for s, d in out["seeds"].items():
        print(f"  seed {s}: {d.mean:+.4f} ± {d.se:.4f} (n={d.n}, {d.verdict()})")
    d = out["total"]
    print(f"  pooled: {d.mean:+.4f} ± {d.se:.4f} (n={d.n}, {d.verdict()})")
    c = out["by_caption"]
    print(f"  pooled, each caption one unit: {c.mean:+.4f} ± {c.se:.4f} ({c.n} captions, {c.verdict()})")
    for k, c in out["checks"].items():
        print(f"    {k.split('/')[-1]:<12} {c.mean:+.4f} ± {c.se:.4f} (n={c.n}, {c.verdict()})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

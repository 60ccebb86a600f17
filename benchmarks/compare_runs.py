"""Two settings head to head: the paired difference of their trained checkpoints.

    .venv/bin/python benchmarks/compare_runs.py A.json[,A2.json ...] B.json[,B2.json ...] [--set split|train]

A and B are results of benchmarks/learning.py (several files per side when its seeds
were run apart). Each training seed's two checkpoints were evaluated on the same
captions with the same noise, so their rewards pair sample by sample: for every seed
present on both sides the difference B − A of the final checkpoints is reported with
its standard error (ddof = 1) and verdict (core/paired.py), then pooled over seeds, and
pooled with each caption as one unit (`clustered_difference`: would other captions of
the split see the difference?). The
files must agree on split, captions and noise seeds; anything else is refused by name.
Also printed beside it: each side's gain over the base and its training cost.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from adascope_ray.core.paired import clustered_difference, paired_difference  # noqa: E402

MUST_AGREE = ("eval_prompts", "eval_seeds", "iterations", "noise_stride")


def load_side(paths: str) -> tuple[dict, dict[int, dict]]:
    """(header of the first file, runs by training seed) of comma-separated result files."""
    head, runs = None, {}
    for p in paths.split(","):
        d = json.loads(Path(p).read_text())
        if head is None:
            head = d
        for key in MUST_AGREE:
            if d.get(key) != head.get(key):
                raise SystemExit(f"{p}: {key} {d.get(key)!r} differs from {paths.split(',')[0]}'s {head.get(key)!r}")
        for r in d["runs"]:
            if r["seed"] in runs:
                raise SystemExit(f"{p}: training seed {r['seed']} appears twice on one side")
            runs[r["seed"]] = r
    return head, runs


MISMATCH_SHARE = 0.02  # base samples that may score differently across machines (a pixel at a check's edge)


def base_mismatch(base_a, base_b, seed: int) -> int:
    """How many base samples score differently on the two sides. The same captions and
    noise re-evaluated on another machine can flip a check on a pixel at its edge; a few
    such samples still pair (the pairs are (caption, noise), not the scores), more than
    MISMATCH_SHARE of them, or another shape, means the sides evaluated different samples."""
    a, b = np.asarray(base_a), np.asarray(base_b)
    if a.shape != b.shape:
        raise SystemExit(f"seed {seed}: the sides evaluated {a.shape} and {b.shape} samples, so they do not pair")
    n = int((a != b).sum())
    if n > MISMATCH_SHARE * a.size:
        raise SystemExit(f"seed {seed}: {n} of {a.size} base rewards differ between the sides, so the samples do not pair")
    return n


def caption_ids(rewards) -> np.ndarray:
    """Each sample's caption, aligned with np.ravel(rewards): an evaluation's rewards are
    (noise seeds, captions), so the caption is the last index."""
    r = np.asarray(rewards)
    return np.broadcast_to(np.arange(r.shape[-1]), r.shape).ravel()


def compare(a_paths: str, b_paths: str, which: str = "split") -> dict:
    ha, ra = load_side(a_paths)
    hb, rb = load_side(b_paths)
    for key in MUST_AGREE:
        if ha.get(key) != hb.get(key):
            raise SystemExit(f"the two sides differ in {key}: {ha.get(key)!r} vs {hb.get(key)!r}")
    seeds = sorted(set(ra) & set(rb))
    if not seeds:
        raise SystemExit(f"no training seed on both sides (A: {sorted(ra)}, B: {sorted(rb)})")
    if which == "split":
        if "," in ha["split"] or ha["split"] != hb["split"]:
            raise SystemExit(f"the sides hold the splits {ha['split']!r} and {hb['split']!r}: name one with --set")
        which = ha["split"]
    for h, side in ((ha, "A"), (hb, "B")):
        if which != "train" and which not in h["split"].split(","):
            raise SystemExit(f"side {side} holds the split(s) {h['split']!r}, not {which!r}")
    out = {"set": which, "split": which if which != "train" else ha["split"], "seeds": seeds, "per_seed": {},
           "base_mismatch": {}}
    pooled_a, pooled_b, captions = [], [], []
    for s in seeds:
        a, b = ra[s][which], rb[s][which]
        out["base_mismatch"][s] = base_mismatch(a["base_total"], b["base_total"], s)
        fa, fb = np.ravel(a["final_total"]), np.ravel(b["final_total"])
        d = paired_difference(fa, fb)
        out["per_seed"][s] = {"b_minus_a": d.mean, "se": d.se, "n": d.n, "verdict": d.verdict(),
                              "gain_a": a["gain"]["reward"], "gain_b": b["gain"]["reward"],
                              "cost_a": ra[s]["cost"], "cost_b": rb[s]["cost"]}
        pooled_a.append(fa)
        pooled_b.append(fb)
        captions.append(caption_ids(a["final_total"]))
    d = paired_difference(np.concatenate(pooled_a), np.concatenate(pooled_b))
    out["pooled"] = {"b_minus_a": d.mean, "se": d.se, "n": d.n, "verdict": d.verdict()}
    c = clustered_difference(np.concatenate(pooled_a), np.concatenate(pooled_b), np.concatenate(captions))
    out["by_caption"] = {"b_minus_a": c.mean, "se": c.se, "n": c.n, "verdict": c.verdict()}
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("a", help="learning.py result(s) of setting A, comma-separated")
    ap.add_argument("b", help="learning.py result(s) of setting B, comma-separated")
    ap.add_argument("--set", default="split", choices=["split", "validation", "test", "train"],
                    help="which evaluation: the held-out split's captions (as run; name validation or test when a file holds both) or the training captions")
    args = ap.parse_args(argv)
    out = compare(args.a, args.b, args.set)
    print(f"B − A, final checkpoints, {out['set'] if args.set != 'train' else 'training'} captions, paired:")
    for s, r in out["per_seed"].items():
        ga, gb = r["gain_a"], r["gain_b"]
        print(f"  seed {s}: {r['b_minus_a']:+.4f} ± {r['se']:.4f} (n={r['n']}, {r['verdict']});"
              f" gain over base A {ga['mean']:+.4f} ± {ga['se']:.4f}, B {gb['mean']:+.4f} ± {gb['se']:.4f};"
              f" cost B/A {r['cost_b'] / r['cost_a']:.2f}")
    for s, n in out["base_mismatch"].items():
        if n:
            print(f"  seed {s}: {n} of the base samples scored differently on the two sides' evaluations "
                  f"(at most {MISMATCH_SHARE:.0%} pair; the difference is of the trained checkpoints' samples)")
    p = out["pooled"]
    print(f"  pooled: {p['b_minus_a']:+.4f} ± {p['se']:.4f} (n={p['n']}, {p['verdict']})")
    c = out["by_caption"]
    print(f"  pooled, each caption one unit: {c['b_minus_a']:+.4f} ± {c['se']:.4f} ({c['n']} captions, {c['verdict']})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

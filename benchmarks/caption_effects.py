"""Which captions gain: does a trained policy help some captions and hurt others, or shift all alike?

    .venv/bin/python benchmarks/caption_effects.py A.json[,A2.json ...] [--set validation|test|train]
        [--selected] [--permutations 2000]

The result files are benchmarks/learning.py's of one setting (several files when its
seeds were run apart). Each training seed's paired differences, trained − base, form
d[t, s, c] (training seed, noise seed, caption), and core/caption_effects.py splits their
variance into a caption's own response shared by the seeds (σ²_a), what one seed did to a
caption beyond that (σ²_b), and the samples' luck (σ²_e), with permutation p-values; for
the total reward and each check. Beside it: the correlation of the per-caption gains
between each two seeds, and the captions that gained and lost most.

With more than one training seed the seeds must have been scored on different noise
(learning.py --noise-stride): a base sample shared by every seed would put its luck into
the caption means, where it reads as a caption effect. Such files are refused by name.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from compare_runs import load_side  # noqa: E402

from adascope_ray.core.caption_effects import caption_effects  # noqa: E402
from adascope_ray.world.splits import split_captions  # noqa: E402


def differences(paths: str, which: str, selected: bool = False) -> dict[str, np.ndarray]:
    """{"total" | check: d (T, S, C)} of the files' runs, refusing runs that share noise."""
    head, runs = load_side(paths)
    evals = {s: (r["selected"] if selected else r)[which] for s, r in sorted(runs.items())}
    noise = {s: tuple(r.get("eval_seeds", head["eval_seeds"])) for s, r in sorted(runs.items())}
    seen: dict[int, int] = {}
    for s, seeds in noise.items():
        for e in seeds:
            if e in seen:
                raise SystemExit(f"training seeds {seen[e]} and {s} were both scored with noise seed {e}: their "
                                 f"pairs share base samples, so caption effects cannot be told from the base's luck "
                                 f"(run learning.py with --noise-stride)")
            seen[e] = s
    for s, e in evals.items():
        if "base_total" not in e:
            raise SystemExit(f"training seed {s} has no {which} evaluation")
    stack = lambda f: np.stack([np.asarray(f(e), dtype=np.float64) for e in evals.values()])  # noqa: E731
    out = {"total": stack(lambda e: e["final_total"]) - stack(lambda e: e["base_total"])}
    for k in next(iter(evals.values())).get("base_components", {}):
        if "/" in k:
            out[k] = stack(lambda e: e["final_components"][k]) - stack(lambda e: e["base_components"][k])
    return out


def captions_of(which: str, n: int) -> list[str]:
    """The captions in the files' order: a held-out split's first n (learning.py); the
    training captions are not named in the files."""
    return split_captions(which, n, seed=0) if which != "train" else [f"training caption {i}" for i in range(n)]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("files", help="learning.py results of one setting, comma-separated")
    ap.add_argument("--set", default="validation", choices=["validation", "test", "train"])
    ap.add_argument("--selected", action="store_true", help="the weights selected on validation (--select-every runs)")
    ap.add_argument("--permutations", type=int, default=2000)
    ap.add_argument("--top", type=int, default=5, help="captions listed at each end")
    a = ap.parse_args(argv)
    ds = differences(a.files, a.set, a.selected)
    T, S, C = ds["total"].shape
    print(f"{a.set} captions: {T} training seeds × {S} noise seeds × {C} captions "
          f"({'selected' if a.selected else 'final'} weights, trained − base)")
    print(f"{'':36s} {'mean':>8s} {'σ²_e':>8s} {'σ²_b':>8s} {'σ²_a':>8s} {'F_a':>6s} {'p_a':>6s} {'F_b':>6s} {'p_b':>6s}")
    for name, d in ds.items():
        if not np.isfinite(d).any() or np.nanstd(d) == 0:
            print(f"{name:36s} does not move")
            continue
        r = caption_effects(d, a.permutations)
        label = name if r.shape[2] == C else f"{name} ({r.shape[2]} captions)"
        print(f"{label:36s} {r.mean:+8.4f} {r.var_residual:8.4f} {r.var_seed_caption:8.4f} {r.var_caption:8.4f} "
              f"{r.f_caption:6.2f} {r.p_caption:6.3f} {r.f_seed_caption:6.2f} {r.p_seed_caption:6.3f}")
    m_tc = ds["total"].mean(axis=1)                                 # (T, C)
    if T > 1:
        pairs = [f"{i}–{j} {np.corrcoef(m_tc[i], m_tc[j])[0, 1]:+.2f}" for i in range(T) for j in range(i + 1, T)]
        print("correlation of the per-caption gains between training seeds: " + ", ".join(pairs))
    names, m_c = captions_of(a.set, C), m_tc.mean(axis=0)
    order = np.argsort(m_c)
    for title, idx in (("most gained", order[::-1][:a.top]), ("most lost", order[:a.top])):
        print(f"{title}: " + "; ".join(f"{names[i]!r} {m_c[i]:+.3f}" for i in idx))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""AdaScope's signals against the step on the shapes world, the Theorem 2 prior beside
them, and thresholds calibrated from when the reward's outcome is really decided.

    .venv/bin/python benchmarks/signal_curves.py [--config configs/tiny.yaml] [--prompts 64] [key=value ...]

The base policy samples captions of the world's validation split (`--split`; a
calibration is a decision, so it is made on validation captions, never on test ones)
with the config's sampler. For every step k it records S_k (structure), C_k (semantic fallback) and D_k
(convergence). They are calibrated against a reference independent of them, the
reward itself: from each sample's x_k, --branches continuations with fresh noise are
scored with scene_check; V_k is the reward variance they still show (V_K = 0) and
G_k = 1 - V_k / V_0 the share of the reward's variance that actions before step k have
fixed. Action k's share is G_{k+1} - G_k: where G climbs, a step's action still
changes the reward, which is where a policy gradient has something to credit. A second,
cheaper view is printed beside it: F_k, the share of scene_check outcomes already
visible in the model's prediction decode(x̂0_k) (agreement with the final image,
normalised from step 0 to the last).

Calibration [ours]: the window opens at the action that takes G past --open (0.2) and
closes where G reaches --close (0.9). tau_s is the median S_k at the opening step,
tau_e the median C_k and eps_conv the median D_k at the closing step. Printed with the
window the learner's own rule (core/window.py) draws on the mean curves with the
default and with the calibrated thresholds.

Writes benchmarks/results/signal_curves.{json,png} with machine, config and commit.
Passing: the calibrated window's actions decide at least --cover (0.6) of the reward variance.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from common import ROOT, shown_config, write_result


from adascope_ray.config import load_config  # noqa: E402

SEED = 4242


def agreement(step_parts: list[dict], final_parts: dict) -> np.ndarray:
    """A_k: share of applicable (sample, check) outcomes at step k equal to the final ones."""
    out = []
    for parts in step_parts:
        same, n = 0, 0
        for c, final in final_parts.items():
            ok = ~np.isnan(final) & ~np.isnan(parts[c])
            same += int((parts[c][ok] == final[ok]).sum())
            n += int((~np.isnan(final)).sum())
        out.append(same / max(n, 1))
    return np.asarray(out)


def decided_variance(sampler, scorer, prompts: list[str], latents: np.ndarray, branches: int,
                     batch_size: int, every: int) -> tuple[np.ndarray, np.ndarray]:
    """G_k: share of the reward's variance over noise that actions before step k have
    already fixed. From each sample's x_k, `branches` continuations with fresh noise;
    V_k = mean over samples of the reward variance across them (V_K = 0, nothing left to
    choose) and G_k = 1 - V_k / V_0, measured every `every` steps and linear between.
    latents: (N, K+1, C, h, w)."""
    n, k1 = latents.shape[:2]
    probes = list(range(0, k1 - 1, every))
    V = np.zeros(k1)
    rep_prompts = [p for p in prompts for _ in range(branches)]            # sample i's branches side by side
    for k in probes:
        x = np.repeat(latents[:, k], branches, axis=0)                        # (N*M, C, h, w)
        r = np.concatenate([scorer(sampler.continue_from(rep_prompts[i : i + 4 * batch_size], x[i : i + 4 * batch_size], k,
                                                         seed=SEED * 31 + k * 1009 + i), rep_prompts[i : i + 4 * batch_size])
                            for i in range(0, len(x), 4 * batch_size)])
        rewards = r.reshape(n, branches)
        V[k] = rewards.var(1, ddof=1).mean()
        print(f"  branching from step {k}: reward variance left {V[k]:.4f}", flush=True)
    V = np.interp(np.arange(k1), probes + [k1 - 1], V[probes + [k1 - 1]])
    return 1 - V / max(V[0], 1e-12), V


def main() -> None:
    from adascope_ray.core import signals as sig
    from adascope_ray.core.window import adascope_bounds
    from adascope_ray.rewards.scene_check import CHECKS, SceneCheck
    from adascope_ray.rollout import Sampler
    from adascope_ray.world.splits import split_captions
    from adascope_ray.charts import Series, line_chart

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--config", default=str(ROOT / "configs" / "tiny.yaml"))
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results"))
    ap.add_argument("--prompts", type=int, default=64)
    ap.add_argument("--split", default="validation", choices=["train", "validation", "test"],
                    help="the caption split sampled (calibration decides: validation)")
    ap.add_argument("--branches", type=int, default=4, help="continuations per sample and step for G_k")
    ap.add_argument("--branch-every", type=int, default=2, help="measure G_k every this many steps, linear between")
    ap.add_argument("--open", type=float, default=0.2, help="F_k at which the calibrated window opens")
    ap.add_argument("--close", type=float, default=0.9, help="F_k at which the calibrated window closes")
    ap.add_argument("--cover", type=float, default=0.6, help="share of G's rise the window must cover to pass")
    args, overrides = ap.parse_known_args()
    cfg = load_config(args.config, overrides)
    sampler = Sampler(cfg.model, cfg.sampling, cfg.sampler, pool=cfg.window.pool)
    prompts = split_captions(args.split, args.prompts, seed=0)
    bs = cfg.sampler.batch_size
    chunks = [sampler.trace(prompts[i : i + bs], SEED + i) for i in range(0, len(prompts), bs)]
    cat = lambda key: np.concatenate([c[key] for c in chunks])  # noqa: E731
    S, C, D, step_images = cat("S"), cat("C"), cat("D"), cat("step_images")   # (N, K) x3, (N, K, H, W, 3)
    n, k = S.shape
    scorer = SceneCheck()
    final_scores, final_parts = scorer.breakdown(cat("images"), prompts)
    step = [scorer.breakdown(step_images[:, j], prompts) for j in range(k)]
    A = agreement([p for _, p in step], final_parts)                                  # (K,)
    F = (A - A[0]) / max(A[-1] - A[0], 1e-9)
    R = np.array([s.mean() for s, _ in step])                                          # reward of decode(x̂0_k)
    G, V = decided_variance(sampler, scorer, prompts, cat("latents"), args.branches, bs, args.branch_every)  # (K+1,)

    alpha_bars = sampler.policy.schedule.alpha_bars
    var_pooled, var_full = float(cat("var_pooled").mean()), float(cat("var_full").mean())
    pool = cfg.window.pool
    psi_pool = sig.schedule_prior(alpha_bars, var_pooled, 1.0 / pool**2).numpy()
    psi_full = sig.schedule_prior(alpha_bars, var_full, 1.0).numpy()
    k_lo, k_hi = sig.prior_bounds(alpha_bars, var_pooled, var_full, pool, cfg.window.prior_lo, cfg.window.prior_hi)

    # G_k counts what actions 0..k-1 fixed; the window [k_open, k_close) holds the actions
    # that take G from below --open to --close
    k_open = max(int(np.argmax(G >= args.open)) - 1, 0)
    k_close = min(int(np.argmax(G >= args.close)), k - 1)
    tau_s, tau_e, eps = float(np.median(S[:, k_open])), float(np.median(C[:, k_close])), float(np.median(D[:, k_close]))
    w = cfg.window.adascope
    w_max = w.resolved_w_max(k)
    mean = lambda x: np.where(np.isfinite(x), x, np.nan).mean(0)  # noqa: E731
    Sm, Cm, Dm = mean(S), mean(C), np.nanmean(np.where(np.isfinite(D), D, np.nan), 0)
    Dm[0] = np.inf
    bounds = dict(k_lo=k_lo if w.use_prior else 0, k_hi=k_hi if w.use_prior else k, w_min=w.w_min)
    # the window the learner's own rule (core/window.py) draws on the mean curves
    default_win = adascope_bounds(Sm, Cm, Dm, tau_s=w.tau_s, tau_e=w.tau_e, eps_conv=w.eps_conv, w_max=w_max, **bounds)
    calib_win = adascope_bounds(Sm, Cm, Dm, tau_s=tau_s, tau_e=tau_e, eps_conv=eps, w_max=w_max, **bounds)

    def covered(win: tuple[int, int]) -> float:
        """Share of the reward variance decided by the actions inside [start, end)."""
        rise = np.clip(np.diff(G), 0, None)                                  # (K,): action j's share G_{j+1} - G_j
        return float(rise[win[0] : win[1]].sum() / max(rise.sum(), 1e-9))

    calib_cover, default_cover = covered(calib_win), covered(default_win)

    print(f"{'k':>3}{'S_k':>7}{'C_k':>7}{'D_k':>7}{'psi_pool':>9}{'psi_full':>9}{'G_k':>7}{'F_k':>7}{'R(x0_k)':>9}")
    for j in range(k):
        print(f"{j:>3}{Sm[j]:>7.3f}{Cm[j]:>7.3f}{Dm[j]:>7.3f}{psi_pool[j]:>9.3f}{psi_full[j]:>9.3f}{G[j]:>7.3f}{F[j]:>7.3f}{R[j]:>9.3f}")
    print(f"\nprior: k_lo {k_lo}, k_hi {k_hi} (s2 pooled {var_pooled:.3f}, full {var_full:.3f}, pool {pool})")
    print(f"reward variance decided: actions [{k_open}, {k_close}) take G from < {args.open} to >= {args.close}")
    print(f"calibrated: tau_s {tau_s:.3f}, tau_e {tau_e:.3f}, eps_conv {eps:.3f}")
    print(f"default thresholds (tau_s {w.tau_s}, tau_e {w.tau_e}, eps_conv {w.eps_conv}): window [{default_win[0]}, {default_win[1]}) "
          f"covers {default_cover:.2f} of the decided variance")
    ok = calib_cover >= args.cover
    print(f"calibrated thresholds: window [{calib_win[0]}, {calib_win[1]}) covers {calib_cover:.2f} "
          f"(target >= {args.cover}): {'PASS' if ok else 'FAIL'}")

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    ks = list(range(k))
    dplot = np.clip(np.nan_to_num(Dm, posinf=1.0), 0, 1)
    q = lambda x, p: list(np.nanpercentile(np.where(np.isfinite(x), x, np.nan), p, 0))  # noqa: E731
    line_chart(str(out / "signal_curves.png"), [
        Series("S_k structure", ks, list(Sm), q(S, 10), q(S, 90)),
        Series("C_k semantic", ks, list(Cm), q(C, 10), q(C, 90)),
        Series("D_k convergence (<=1)", ks, list(dplot)),
        Series("psi pooled (prior)", ks, list(psi_pool), dashed=True),
        Series("psi full (prior)", ks, list(psi_full), dashed=True),
        Series("G_k variance decided", ks, list(G[:k]), color=(0, 0, 0)),
        Series("F_k outcome visible", ks, list(F), color=(90, 90, 90)),
    ], title=f"{args.split} captions ({n}; bands 10-90 %), calibrated window [{calib_win[0]}, {calib_win[1]})",
        xlabel="denoising step k", ylabel="value", ylim=(-0.1, 1.05))
    shown = shown_config(args.config)
    path = write_result("signal_curves", {
        "config": shown, "overrides": overrides, "split": args.split, "samples": n, "steps": k,
        "curves": {"S": Sm.tolist(), "C": Cm.tolist(), "D": np.nan_to_num(Dm, posinf=-1).tolist(),
                   "psi_pooled": psi_pool.tolist(), "psi_full": psi_full.tolist(), "A": A.tolist(), "F": F.tolist(),
                   "G": G.tolist(), "V": V.tolist(),
                   "reward_x0": R.tolist()},
        "final_reward": float(final_scores.mean()), "final_checks": {c: float(np.nanmean(final_parts[c])) for c in CHECKS},
        "prior": {"k_lo": k_lo, "k_hi": k_hi, "var_pooled": var_pooled, "var_full": var_full},
        "calibrated": {"tau_s": tau_s, "tau_e": tau_e, "eps_conv": eps, "k_open": k_open, "k_close": k_close,
                       "window": calib_win, "covers": calib_cover},
        "default": {"tau_s": w.tau_s, "tau_e": w.tau_e, "eps_conv": w.eps_conv, "window": default_win,
                    "covers": default_cover}, "pass": ok}, out)
    print(f"wrote {path} and signal_curves.png")


if __name__ == "__main__":
    main()

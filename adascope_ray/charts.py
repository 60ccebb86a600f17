"""Charts with matplotlib (no ray): the run's reward curve and window heatmap, the
report's charts, and the benchmarks' line charts.

Every function takes `dest`, a path or a binary file object (the report embeds the
PNG bytes), and draws with the non-interactive Agg backend.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

TRAIN_GREY, EVAL_BLUE = "#9aa5b1", "#1f77b4"


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, dest) -> None:
    fig.tight_layout()
    fig.savefig(dest, format="png")
    _pyplot().close(fig)


@dataclass
class Series:
    """One line: ys over xs; lo/hi (optional) a shaded band, e.g. ±1 SE or the range
    over seeds; dashed for a reference (a prior, a target); color as an RGB triple
    of 0-255 or a matplotlib colour."""
    label: str
    xs: list[float]
    ys: list[float]
    lo: list[float] | None = None
    hi: list[float] | None = None
    dashed: bool = False
    color: tuple[int, int, int] | str | None = None
    markers: bool = True


def _color(c):
    return tuple(v / 255 for v in c) if isinstance(c, tuple) else c


def line_chart(dest, series: list[Series], title: str = "", xlabel: str = "", ylabel: str = "",
               size: tuple[float, float] = (7.2, 4.0), ylim: tuple[float, float] | None = None) -> None:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=size, dpi=100)
    for s in series:
        kw = {"color": _color(s.color)} if s.color is not None else {}
        line, = ax.plot(s.xs, s.ys, "--" if s.dashed else "-", marker="o" if s.markers and len(s.xs) < 40 else None,
                        ms=3, lw=1.6, label=s.label, **kw)
        if s.lo is not None and s.hi is not None:
            ax.fill_between(s.xs, s.lo, s.hi, color=line.get_color(), alpha=0.18, lw=0)
    ax.set_title(title, fontsize=10)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if ylim is not None:
        ax.set_ylim(*ylim)
    ax.grid(alpha=0.3)
    if len(series) > 3:  # many lines: the legend beside the axes, never over them
        ax.legend(fontsize=8, frameon=False, loc="center left", bbox_to_anchor=(1.0, 0.5))
    elif series:
        ax.legend(fontsize=8, frameon=False)
    _save(fig, dest)


def reward_chart(dest, iterations: list[int], train: list[float], evals: list[dict]) -> None:
    """The training reward per iteration and, when the run evaluates, the held-out
    reward after each evaluation with a band of ±1 standard error.
    evals: [{"updates", "reward", "reward_se"}]."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 3.6), dpi=100)
    ax.plot(np.asarray(iterations) + 1, train, color=TRAIN_GREY, lw=1.2, label="training reward (this iteration's samples)")
    if evals:
        x = np.array([e["updates"] for e in evals], float)
        y = np.array([e["reward"] for e in evals], float)
        se = np.nan_to_num(np.array([e["reward_se"] for e in evals], float))
        ax.fill_between(x, y - se, y + se, color=EVAL_BLUE, alpha=0.2, lw=0)
        ax.plot(x, y, "o-", color=EVAL_BLUE, lw=2, ms=4, label="held-out reward (fixed prompts and noise, ±1 SE)")
    ax.set_xlabel("updates")
    ax.set_ylabel("reward")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=8, frameon=False)
    _save(fig, dest)


def window_matrix(rows: list[dict]) -> np.ndarray:
    """(K, T): share of the iteration's trained (sample, step) pairs at step k, from each
    metrics row's window_hist (pairs per step); an iteration that trained nothing is 0."""
    hist = np.array([[float(v) for v in r["window_hist"]] for r in rows], float)   # (T, K)
    total = hist.sum(1, keepdims=True)
    return np.divide(hist, total, out=np.zeros_like(hist), where=total > 0).T


def window_heatmap(dest, rows: list[dict]) -> None:
    """Which denoising steps the update trained, step × iteration."""
    plt = _pyplot()
    m = window_matrix(rows)
    its = [r["iteration"] for r in rows]
    fig, ax = plt.subplots(figsize=(6.4, 3.2), dpi=100)
    im = ax.imshow(m, aspect="auto", origin="lower", cmap="viridis", vmin=0, interpolation="nearest",
                   extent=(its[0] + 0.5, its[-1] + 1.5, -0.5, m.shape[0] - 0.5))
    ax.set_xlabel("update")
    ax.set_ylabel("denoising step k (0 = noisiest)")
    fig.colorbar(im, ax=ax, label="share of trained pairs")
    _save(fig, dest)


def stacked_bars(dest, xs: list[float], parts: dict[str, list[float]], title: str = "", xlabel: str = "",
                 ylabel: str = "") -> None:
    """One bar per x, stacked by part (e.g. seconds per phase of each iteration)."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7.2, 3.6), dpi=100)
    bottom = np.zeros(len(xs))
    for name, values in parts.items():
        v = np.nan_to_num(np.asarray(values, float))
        ax.bar(xs, v, bottom=bottom, width=0.85, label=name)
        bottom += v
    ax.set_title(title, fontsize=10)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3, axis="y")
    ax.legend(fontsize=8, frameon=False, ncol=min(4, max(len(parts), 1)))
    _save(fig, dest)


@dataclass
class Point:
    """One setting: y ± err at x, and the values it pools (e.g. one per seed) as dots."""
    label: str
    x: float
    y: float
    err: float
    parts: list[float]


def points_chart(dest, points: list[Point], title: str = "", xlabel: str = "", ylabel: str = "") -> None:
    """Settings as points with error bars and their parts beside them, a zero line for
    "no change" (e.g. each window strategy's paired gain over the base against its cost)."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7.2, 4.0), dpi=100)
    ax.axhline(0.0, color=TRAIN_GREY, lw=1, ls="--")
    for p in points:
        line = ax.errorbar([p.x], [p.y], yerr=[p.err], fmt="o", ms=6, capsize=4, lw=1.6, label=p.label)
        ax.plot([p.x] * len(p.parts), p.parts, ".", ms=5, alpha=0.5, color=line[0].get_color())
    ax.set_title(title, fontsize=10)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, frameon=False, loc="center left", bbox_to_anchor=(1.0, 0.5))
    _save(fig, dest)

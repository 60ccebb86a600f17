"""Pictures: image grids of samples (one row per prompt), the reward chart and the
window heatmap."""
from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw

CELL = 96  # grid cell side in pixels (small images are upscaled, nearest neighbour)


def image_grid(images: np.ndarray, prompts: list[str], rewards: np.ndarray, group_size: int,
               max_rows: int = 8) -> Image.Image:
    """images: (B, H, W, 3) uint8, grouped by prompt, group_size per row."""
    rows = min(max_rows, len(images) // group_size)
    label_h = 14
    grid = Image.new("RGB", (group_size * CELL, rows * (CELL + label_h)), "white")
    draw = ImageDraw.Draw(grid)
    for r in range(rows):
        y = r * (CELL + label_h)
        draw.text((2, y + 1), prompts[r * group_size][:60], fill="black")
        for c in range(group_size):
            i = r * group_size + c
            cell = Image.fromarray(images[i]).resize((CELL, CELL), Image.NEAREST)
            grid.paste(cell, (c * CELL, y + label_h))
            draw.text((c * CELL + 2, y + label_h + 2), f"{rewards[i]:.2f}", fill="yellow")
    return grid


def reward_chart(path, iterations: list[int], train: list[float], evals: list[dict]) -> None:
    """reward.png: the training reward per iteration and, when the run evaluates, the
    held-out reward after each evaluation with a band of ±1 standard error (matplotlib).
    evals: [{"updates", "reward", "reward_se"}]."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 3.6), dpi=100)
    ax.plot(np.asarray(iterations) + 1, train, color="#9aa5b1", lw=1.2, label="training reward (this iteration's samples)")
    if evals:
        x = np.array([e["updates"] for e in evals], float)
        y = np.array([e["reward"] for e in evals], float)
        se = np.nan_to_num(np.array([e["reward_se"] for e in evals], float))
        ax.fill_between(x, y - se, y + se, color="#1f77b4", alpha=0.2, lw=0)
        ax.plot(x, y, "o-", color="#1f77b4", lw=2, ms=4, label="held-out reward (fixed prompts and noise, ±1 SE)")
    ax.set_xlabel("updates")
    ax.set_ylabel("reward")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=8, frameon=False)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def window_matrix(rows: list[dict]) -> np.ndarray:
    """(K, T): share of the iteration's trained (sample, step) pairs at step k, from each
    metrics row's window_hist (pairs per step); an iteration that trained nothing is 0."""
    hist = np.array([[float(v) for v in r["window_hist"]] for r in rows], float)   # (T, K)
    total = hist.sum(1, keepdims=True)
    return np.divide(hist, total, out=np.zeros_like(hist), where=total > 0).T


def window_heatmap(path, rows: list[dict]) -> None:
    """window.png: which denoising steps the update trained, step × iteration (matplotlib)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    m = window_matrix(rows)
    its = [r["iteration"] for r in rows]
    fig, ax = plt.subplots(figsize=(6.4, 3.2), dpi=100)
    im = ax.imshow(m, aspect="auto", origin="lower", cmap="viridis", vmin=0, interpolation="nearest",
                   extent=(its[0] + 0.5, its[-1] + 1.5, -0.5, m.shape[0] - 0.5))
    ax.set_xlabel("update")
    ax.set_ylabel("denoising step k (0 = noisiest)")
    fig.colorbar(im, ax=ax, label="share of trained pairs")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)

"""Pictures: image grids of samples (one row per prompt) and the reward curve."""
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


def line_plot(xs: list[float], series: dict[str, list[float]], title: str, size=(480, 300)) -> Image.Image:
    """A minimal line chart with PIL (no plotting dependency)."""
    w, h = size
    img = Image.new("RGB", size, "white")
    d = ImageDraw.Draw(img)
    left, right, top, bottom = 50, w - 10, 24, h - 24
    d.text((left, 4), title, fill="black")
    d.rectangle([left, top, right, bottom], outline="black")
    ys = [v for vals in series.values() for v in vals if v is not None and np.isfinite(v)]
    if not xs or not ys:
        return img
    y0, y1 = min(ys), max(ys)
    y1 = y1 if y1 > y0 else y0 + 1.0
    x0, x1 = min(xs), max(xs) if max(xs) > min(xs) else min(xs) + 1
    px = lambda x: left + (x - x0) / (x1 - x0) * (right - left)  # noqa: E731
    py = lambda y: bottom - (y - y0) / (y1 - y0) * (bottom - top)  # noqa: E731
    d.text((2, top), f"{y1:.3g}", fill="black")
    d.text((2, bottom - 10), f"{y0:.3g}", fill="black")
    colors = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd"]
    for j, (name, vals) in enumerate(series.items()):
        pts = [(px(x), py(v)) for x, v in zip(xs, vals) if v is not None and np.isfinite(v)]
        if len(pts) > 1:
            d.line(pts, fill=colors[j % len(colors)], width=2)
        d.text((left + 6 + 110 * j, bottom + 6), name, fill=colors[j % len(colors)])
    return img

"""Image grids of samples, one row per prompt (charts: charts.py)."""
from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw

CELL = 96  # grid cell side in pixels (small images are upscaled, nearest neighbour)


def image_grid(images: np.ndarray, prompts: list[str], rewards: np.ndarray, group_size: int,
               max_rows: int = 8, column_labels: list[str] | None = None) -> Image.Image:
    """images: (B, H, W, 3) uint8, grouped by prompt, group_size per row; column_labels
    (optional) head the columns (e.g. the checkpoints compared)."""
    rows = min(max_rows, len(images) // group_size)
    label_h = 14
    top = label_h if column_labels else 0
    grid = Image.new("RGB", (group_size * CELL, top + rows * (CELL + label_h)), "white")
    draw = ImageDraw.Draw(grid)
    for c, text in enumerate(column_labels or []):
        draw.text((c * CELL + 2, 1), text[-16:], fill="#1f4e99")
    for r in range(rows):
        y = top + r * (CELL + label_h)
        draw.text((2, y + 1), prompts[r * group_size][:60], fill="black")
        for c in range(group_size):
            i = r * group_size + c
            cell = Image.fromarray(images[i]).resize((CELL, CELL), Image.NEAREST)
            grid.paste(cell, (c * CELL, y + label_h))
            draw.text((c * CELL + 2, y + label_h + 2), f"{rewards[i]:.2f}", fill="yellow")
    return grid

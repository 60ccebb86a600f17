"""Procedural scenes: 1–3 coloured shapes in a region of a plain or striped background,
with a caption that says exactly what is drawn.

    "two red circles on the left, gray background"
    "a blue triangle at the top, striped white background"
    "three yellow squares, black background"            (no position: anywhere)

A scene is a pure function of its random generator, so a dataset is a pure function of
its seed. Shapes have diameter size/4 (8 px at 32 px) and do not overlap; "on the left"
puts every shape's centre in the left half, and so on.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

OBJECT_COLORS: dict[str, tuple[int, int, int]] = {
    "red": (220, 40, 40), "green": (40, 180, 60), "blue": (40, 80, 220), "yellow": (230, 210, 40),
}
BACKGROUNDS: dict[str, tuple[int, int, int]] = {"black": (20, 20, 20), "gray": (128, 128, 128), "white": (235, 235, 235)}
SHAPES = ("circle", "square", "triangle")
COUNT_WORDS = {1: "a", 2: "two", 3: "three"}
POSITIONS = {"left": "on the left", "right": "on the right", "top": "at the top", "bottom": "at the bottom"}
STRIPE_DELTA = 28  # striped backgrounds alternate the colour and the colour ± this, every 2 px rows
# Drawing geometry, in units of the shape radius r = size / 8: a disc of radius r, a
# square of half-side SQUARE_HALF·r, an apex-up triangle from (0, −r) to a base of half-
# width r at y = TRIANGLE_BASE·r.
SQUARE_HALF, TRIANGLE_BASE = 0.85, 0.8


def stripe_color(background: str) -> tuple[int, int, int]:
    """A striped background's second colour: the colour ± STRIPE_DELTA, toward mid-gray."""
    c = BACKGROUNDS[background]
    d = STRIPE_DELTA if np.mean(c) < 128 else -STRIPE_DELTA
    return tuple(int(np.clip(v + d, 0, 255)) for v in c)


@dataclass(frozen=True)
class Scene:
    color: str               # key of OBJECT_COLORS
    shape: str               # one of SHAPES
    count: int               # 1..3
    position: str | None     # key of POSITIONS, or None = anywhere
    background: str          # key of BACKGROUNDS
    striped: bool
    centres: tuple[tuple[float, float], ...]  # (x, y) in [0, 1], one per shape


def shape_area(shape: str, size: int) -> float:
    """Pixel area of one shape as render draws it at `size` px."""
    r = size / 8
    return {"circle": np.pi * r * r, "square": (2 * SQUARE_HALF * r) ** 2,
            "triangle": r * (1 + TRIANGLE_BASE) * r}[shape]  # base 2r × height (1 + TRIANGLE_BASE) r / 2


def region(position: str | None, margin: float) -> tuple[float, float, float, float]:
    """(x0, x1, y0, y1) in [0, 1] where centres may fall for a position."""
    lo, hi = margin, 1 - margin
    return {None: (lo, hi, lo, hi), "left": (lo, 0.5 - margin / 2, lo, hi), "right": (0.5 + margin / 2, hi, lo, hi),
            "top": (lo, hi, lo, 0.5 - margin / 2), "bottom": (lo, hi, 0.5 + margin / 2, hi)}[position]


def sample_scene(rng: np.random.Generator) -> Scene:
    color = str(rng.choice(list(OBJECT_COLORS)))
    shape = str(rng.choice(SHAPES))
    count = int(rng.integers(1, 4))
    position = [None, *POSITIONS][int(rng.integers(0, 5))]
    background = str(rng.choice(list(BACKGROUNDS)))
    striped = bool(rng.random() < 0.3)
    radius = 1 / 8  # of the image side
    x0, x1, y0, y1 = region(position, radius + 1 / 32)
    centres: list[tuple[float, float]] = []
    tries = 0
    while len(centres) < count:  # rejection: bounding boxes at least a gap apart
        tries += 1
        if tries % 100 == 0:  # boxed in by the first picks: start over
            centres = []
        c = (float(rng.uniform(x0, x1)), float(rng.uniform(y0, y1)))
        if all(max(abs(c[0] - a), abs(c[1] - b)) >= 2 * radius + 1 / 32 for a, b in centres):  # boxes apart
            centres.append(c)
    return Scene(color, shape, count, position, background, striped, tuple(centres))


def caption(scene: Scene) -> str:
    noun = scene.shape + ("s" if scene.count > 1 else "")
    where = f" {POSITIONS[scene.position]}" if scene.position else ""
    bg = ("striped " if scene.striped else "") + scene.background
    return f"{COUNT_WORDS[scene.count]} {scene.color} {noun}{where}, {bg} background"


def render(scene: Scene, size: int = 32, supersample: int = 4) -> np.ndarray:
    """(size, size, 3) uint8: drawn at size × supersample, then box-filtered down."""
    big = size * supersample
    bg = np.array(BACKGROUNDS[scene.background], dtype=np.int32)
    canvas = np.broadcast_to(bg, (big, big, 3)).copy()
    if scene.striped:
        rows = (np.arange(big) // (2 * supersample)) % 2 == 1
        canvas[rows] = stripe_color(scene.background)
    img = Image.fromarray(canvas.astype(np.uint8))
    draw = ImageDraw.Draw(img)
    r, fill = big / 8, OBJECT_COLORS[scene.color]
    for cx, cy in scene.centres:
        x, y = cx * big, cy * big
        if scene.shape == "circle":
            draw.ellipse([x - r, y - r, x + r, y + r], fill=fill)
        elif scene.shape == "square":
            s = r * SQUARE_HALF  # a square of equal area to the circle would be 0.886 r half-side
            draw.rectangle([x - s, y - s, x + s, y + s], fill=fill)
        else:  # apex up, base down
            draw.polygon([(x, y - r), (x + r, y + r * TRIANGLE_BASE), (x - r, y + r * TRIANGLE_BASE)], fill=fill)
    return np.asarray(img.resize((size, size), Image.BOX))


def dataset(n: int, seed: int, size: int = 32) -> tuple[np.ndarray, list[str], list[Scene]]:
    """n scenes from one seed: images (n, size, size, 3) uint8, captions, scenes."""
    rng = np.random.default_rng(seed)
    scenes = [sample_scene(rng) for _ in range(n)]
    return np.stack([render(s, size) for s in scenes]), [caption(s) for s in scenes], scenes

"""A verifiable reward for the shapes world (adascope_ray/world): parse the prompt, find
the named shapes in the image, check each claim. Weight-free, no detector (GenEval's
idea with colour segmentation in place of a model).

    prompt   "two red circles on the left, gray background"
    checks   color       1 if any blob of the named colour exists
             count       1 if exactly the named number of such blobs exist
             shape       share of those blobs whose form is the named shape
             position    share of those blobs whose centre is in the named half (only
                         when the prompt names a position)
             background  1 if the image's non-blob pixels are nearest the named colour
    score  = mean of the checks that apply, in [0, 1]
             (aggregate="product": their product, 1 only when every check passes)

Partial credit (`graded=True`, a training signal; held-out evaluation stays binary):
each check becomes a number that moves with how near the image is to passing; the
world's own renders score 0.98 on average (pass / fail: 1.0):
             color       share of the named colour's expected area that is there:
                         min(1, n_c / (count · A_1)), A_1 the area the world draws one
                         shape with (world.scenes.shape_area; r = size/8): disc π r²,
                         square (1.7 r)², triangle 1.8 r²
             count       2^(−|blobs − count|)
             shape       mean over blobs of p(named form), the binary rule's two
                         thresholds (TAPER, SQUARE_FILL) made logistic with width 0.03
             position    mean over blobs of σ(signed distance of the centre into the
                         named half / 0.025 of the image side)
             background  1 − ‖median − named colour‖ / (the largest distance between two
                         background colours), clipped at 0

Segmentation: a pixel belongs to an object colour c when it is nearer c than any other
object or background colour and within COLOR_RADIUS of c; blobs are 4-connected
regions of one colour with at least MIN_AREA_FRAC of the image. Form: a triangle
(apex up) has far fewer pixels above its box's middle row than below; of the rest, a
square fills ~1 of its bounding box, a disc π/4 ≈ 0.79.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from ..world.scenes import BACKGROUNDS, OBJECT_COLORS, POSITIONS, SHAPES, shape_area, stripe_color

CHECKS = ("color", "count", "shape", "position", "background")
COLOR_RADIUS = 110.0     # RGB distance within which a pixel can count as an object colour
MIN_AREA_FRAC = 0.004    # 4 px of a 32 px image
SQUARE_FILL = 0.84       # share of its bounding box a square fills (a disc: π/4 ≈ 0.79)
TAPER = 0.7              # upper-half / lower-half pixels below this: a triangle (apex up)
SOFT_FORM, SOFT_POS = 0.03, 0.025  # widths of the graded checks' soft edges
_COUNTS = {"a": 1, "an": 1, "one": 1, "two": 2, "three": 3}


@dataclass(frozen=True)
class Claim:
    count: int
    color: str
    shape: str
    position: str | None
    background: str | None


def parse_prompt(prompt: str) -> Claim | None:
    """The claim a shapes-world caption makes, or None when it is not one."""
    words = re.findall(r"[a-z]+", prompt.lower())
    count = next((_COUNTS[w] for w in words if w in _COUNTS), None)
    color = next((w for w in words if w in OBJECT_COLORS), None)
    shape = next((w.rstrip("s") for w in words if w.rstrip("s") in SHAPES), None)
    if count is None or color is None or shape is None:
        return None
    position = next((k for k, phrase in POSITIONS.items() if phrase in " ".join(words)), None)
    bg = re.search(r"(\w+) background", prompt.lower())
    return Claim(count, color, shape, position, bg.group(1) if bg and bg.group(1) in BACKGROUNDS else None)


def _palette() -> tuple[list[str], np.ndarray]:
    # striped backgrounds' second colour belongs to the background too
    names = list(OBJECT_COLORS) + list(BACKGROUNDS) + list(BACKGROUNDS)
    cols = [*OBJECT_COLORS.values(), *BACKGROUNDS.values(), *(stripe_color(b) for b in BACKGROUNDS)]
    return names, np.asarray(cols, dtype=np.float32)


_NAMES, _COLS = _palette()
_BG_COLS = np.asarray(list(BACKGROUNDS.values()), np.float32)                        # (backgrounds, 3)
_BG_SPAN = float(max(np.linalg.norm(a - b) for a in _BG_COLS for b in _BG_COLS))     # black to white


def _blobs(mask: np.ndarray) -> list[np.ndarray]:
    """4-connected components of a (H, W) bool mask, as (n, 2) arrays of (y, x)."""
    seen = np.zeros_like(mask)
    out = []
    for y0, x0 in zip(*np.nonzero(mask)):
        if seen[y0, x0]:
            continue
        stack, pts = [(y0, x0)], []
        seen[y0, x0] = True
        while stack:
            y, x = stack.pop()
            pts.append((y, x))
            for ny, nx in ((y - 1, x), (y + 1, x), (y, x - 1), (y, x + 1)):
                if 0 <= ny < mask.shape[0] and 0 <= nx < mask.shape[1] and mask[ny, nx] and not seen[ny, nx]:
                    seen[ny, nx] = True
                    stack.append((ny, nx))
        out.append(np.asarray(pts))
    return out


def _form(blob: np.ndarray) -> tuple[float, float]:
    """blob: (n, 2) pixel (y, x) -> (taper, fill): pixels above / below its box's middle
    row (inf when none below), and the share of its bounding box it fills."""
    y, x = blob[:, 0], blob[:, 1]
    h, w = int(y.max() - y.min() + 1), int(x.max() - x.min() + 1)
    mid = (y.min() + y.max()) / 2
    upper, lower = (y < mid).sum(), (y > mid).sum()
    return (upper / lower if lower else np.inf), len(blob) / (h * w)


def shape_of(blob: np.ndarray) -> str:
    """Triangle (apex up) when its upper half is much narrower than its lower half;
    else square when it fills its box, else circle."""
    taper, fill = _form(blob)
    if taper < TAPER:
        return "triangle"
    return "square" if fill > SQUARE_FILL else "circle"


def _sigmoid(z: float) -> float:
    return float(1 / (1 + np.exp(-np.clip(z, -50, 50))))


def shape_prob(blob: np.ndarray, shape: str) -> float:
    """shape_of's two decisions made soft: p(triangle) = σ((TAPER − taper) / w),
    p(square) = (1 − p(triangle)) σ((fill − SQUARE_FILL) / w), circle the rest."""
    taper, fill = _form(blob)
    tri = _sigmoid((TAPER - taper) / SOFT_FORM)
    sq = _sigmoid((fill - SQUARE_FILL) / SOFT_FORM)
    return {"triangle": tri, "square": (1 - tri) * sq, "circle": (1 - tri) * (1 - sq)}[shape]


def into_region(cy: float, cx: float, position: str) -> float:
    """(cy, cx) in [0, 1] image coordinates -> signed distance into the named half."""
    return {"left": 0.5 - cx, "right": cx - 0.5, "top": 0.5 - cy, "bottom": cy - 0.5}[position]


def in_region(cy: float, cx: float, position: str) -> bool:
    return into_region(cy, cx, position) > 0


def check_image(image: np.ndarray, claim: Claim, graded: bool = False) -> dict[str, float]:
    """image: (H, W, 3) uint8 -> {check: value in [0, 1]} for the checks that apply;
    graded: partial credit (module docstring) in place of pass / fail."""
    h, w, _ = image.shape
    px = image.reshape(-1, 3).astype(np.float32)
    dist = np.linalg.norm(px[:, None, :] - _COLS[None], axis=-1)       # (H·W, palette)
    nearest = dist.argmin(1)
    objects = np.zeros(h * w, bool)
    for i in range(len(OBJECT_COLORS)):
        objects |= (nearest == i) & (dist[:, i] < COLOR_RADIUS)
    target = _NAMES.index(claim.color)
    mask = ((nearest == target) & (dist[:, target] < COLOR_RADIUS)).reshape(h, w)
    blobs = [b for b in _blobs(mask) if len(b) >= MIN_AREA_FRAC * h * w]
    centres = [(b[:, 0].mean() / h, b[:, 1].mean() / w) for b in blobs]   # (cy, cx) in [0, 1]
    mean = lambda v: float(np.mean(v)) if blobs else 0.0                  # noqa: E731  no blob: 0
    if graded:
        out = {"color": min(1.0, float(mask.sum()) / (claim.count * shape_area(claim.shape, h))),
               "count": 2.0 ** -abs(len(blobs) - claim.count),
               "shape": mean([shape_prob(b, claim.shape) for b in blobs])}
        if claim.position is not None:
            out["position"] = mean([_sigmoid(into_region(cy, cx, claim.position) / SOFT_POS) for cy, cx in centres])
    else:
        out = {"color": float(bool(blobs)), "count": float(len(blobs) == claim.count),
               "shape": mean([shape_of(b) == claim.shape for b in blobs])}
        if claim.position is not None:
            out["position"] = mean([in_region(cy, cx, claim.position) for cy, cx in centres])
    if claim.background is not None:
        out["background"] = _background(px[~objects], claim.background, graded)
    return out


def _background(rest: np.ndarray, named: str, graded: bool) -> float:
    """rest: (n, 3) the non-object pixels. Binary: their median is nearest the named
    background colour; graded: 1 − its distance from the named colour, in units of the
    largest distance between two background colours (black to white)."""
    if not len(rest):
        return 0.0
    d = np.linalg.norm(_BG_COLS - np.median(rest, axis=0), axis=1)      # (backgrounds,)
    i = list(BACKGROUNDS).index(named)
    if not graded:
        return float(d.argmin() == i)
    return float(max(0.0, 1 - d[i] / _BG_SPAN))


class SceneCheck:
    """score = mean of the applicable checks (aggregate="product": their product, so
    that a sample scores 1 only when every check passes and one check cannot make up
    for another); `breakdown(...)` gives them one by one. graded=True gives partial
    credit (module docstring)."""

    name = "scene_check"

    def __init__(self, graded: bool = False, aggregate: str = "mean"):
        if aggregate not in ("mean", "product"):
            raise ValueError(f"scene_check: aggregate must be 'mean' or 'product', got {aggregate!r}")
        self.graded, self.aggregate = graded, aggregate

    def breakdown(self, images: np.ndarray, prompts: list[str]) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        claims = [parse_prompt(p) for p in prompts]
        bad = next((p for p, c in zip(prompts, claims) if c is None), None)
        if bad is not None:
            raise ValueError(f"reward 'scene_check': {bad!r} is not a shapes-world prompt "
                             "(count, colour and shape words are needed)")
        per = [check_image(im, c, self.graded) for im, c in zip(images, claims)]
        combine = np.mean if self.aggregate == "mean" else np.prod
        scores = np.asarray([combine(list(d.values())) for d in per], dtype=np.float32)
        # a check that does not apply to a prompt is NaN in the breakdown
        parts = {k: np.asarray([d.get(k, np.nan) for d in per], dtype=np.float32) for k in CHECKS}
        return scores, parts

    def __call__(self, images: np.ndarray, prompts: list[str]) -> np.ndarray:
        return self.breakdown(images, prompts)[0]

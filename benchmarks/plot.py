"""Line charts as PNG with Pillow alone (the project does not depend on a plotting library).

    line_chart(path, series, title=..., xlabel=..., ylabel=...)

series: list of Series(label, xs, ys, lo, hi, dashed); lo/hi (optional) draw a shaded band
(for example the range over seeds); a dashed series draws a reference (a prior, a target).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

from PIL import Image, ImageDraw, ImageFont

COLORS = [(31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189), (140, 86, 75),
          (227, 119, 194), (127, 127, 127)]


@dataclass
class Series:
    label: str
    xs: list[float]
    ys: list[float]
    lo: list[float] | None = None
    hi: list[float] | None = None
    dashed: bool = False
    color: tuple[int, int, int] | None = None
    markers: bool = True
    extra: dict = field(default_factory=dict)


def _ticks(lo: float, hi: float, n: int = 5) -> list[float]:
    span = hi - lo or 1.0
    raw = span / n
    step = 10 ** math.floor(math.log10(raw))
    step *= next(m for m in (1, 2, 2.5, 5, 10) if step * m >= raw)
    first = math.ceil(lo / step) * step
    return [first + i * step for i in range(int((hi - first) / step + 1e-9) + 1)]


def _fmt(v: float) -> str:
    return f"{v:.0f}" if abs(v) >= 100 else f"{v:.2f}".rstrip("0").rstrip(".") if v else "0"


def line_chart(path: str, series: list[Series], title: str = "", xlabel: str = "", ylabel: str = "",
               size: tuple[int, int] = (900, 560), ylim: tuple[float, float] | None = None) -> None:
    w, h = size
    left, right, top, bottom = 80, 200, 56, 60
    img = Image.new("RGB", size, "white")
    d = ImageDraw.Draw(img)
    font = ImageFont.load_default(size=14)
    xs = [x for s in series for x in s.xs]
    ys = [y for s in series for y in (s.ys + (s.lo or []) + (s.hi or [])) if math.isfinite(y)]
    x0, x1 = min(xs), max(xs)
    y0, y1 = ylim if ylim else (min(ys), max(ys))
    pad = (y1 - y0) * 0.05 or 0.05
    y0, y1 = (y0, y1) if ylim else (y0 - pad, y1 + pad)
    x1 = x1 if x1 > x0 else x0 + 1

    def px(x: float, y: float) -> tuple[float, float]:
        return (left + (x - x0) / (x1 - x0) * (w - left - right), top + (y1 - y) / (y1 - y0) * (h - top - bottom))

    for t in _ticks(y0, y1):
        _, yy = px(x0, t)
        d.line([(left, yy), (w - right, yy)], fill=(230, 230, 230))
        d.text((left - 8, yy), _fmt(t), fill="black", font=font, anchor="rm")
    for t in _ticks(x0, x1):
        xx, _ = px(t, y0)
        d.line([(xx, top), (xx, h - bottom)], fill=(230, 230, 230))
        d.text((xx, h - bottom + 8), _fmt(t), fill="black", font=font, anchor="mt")
    d.rectangle([left, top, w - right, h - bottom], outline="black")
    d.text((w / 2, 8), title, fill="black", font=font, anchor="mt")
    d.text(((left + w - right) / 2, h - 22), xlabel, fill="black", font=font, anchor="mt")
    d.text((8, top - 20), ylabel, fill="black", font=font)
    band = Image.new("RGBA", size, (0, 0, 0, 0))
    bd = ImageDraw.Draw(band)
    for i, s in enumerate(series):
        c = s.color or COLORS[i % len(COLORS)]
        if s.lo and s.hi:
            poly = [px(x, y) for x, y in zip(s.xs, s.hi)] + [px(x, y) for x, y in zip(s.xs[::-1], s.lo[::-1])]
            bd.polygon(poly, fill=c + (40,))
    img.paste(band, (0, 0), band)
    for i, s in enumerate(series):
        c = s.color or COLORS[i % len(COLORS)]
        pts = [px(x, y) for x, y in zip(s.xs, s.ys) if math.isfinite(y)]
        for a, b in zip(pts, pts[1:]):
            if s.dashed:
                n = max(1, int(math.dist(a, b) / 6))
                for j in range(0, n, 2):
                    d.line([(a[0] + (b[0] - a[0]) * j / n, a[1] + (b[1] - a[1]) * j / n),
                            (a[0] + (b[0] - a[0]) * (j + 1) / n, a[1] + (b[1] - a[1]) * (j + 1) / n)], fill=c, width=2)
            else:
                d.line([a, b], fill=c, width=2)
        if s.markers and not s.dashed:
            for x, y in pts:
                d.ellipse([x - 3, y - 3, x + 3, y + 3], fill=c)
        ly = top + 10 + 18 * i
        d.line([(w - right + 12, ly), (w - right + 36, ly)], fill=c, width=3)
        d.text((w - right + 42, ly), s.label, fill="black", font=font, anchor="lm")
    img.save(path)

"""Caption splits of the shapes world that can never overlap (docs/evaluation.md).

The world has about a thousand distinct captions, and scenes drawn from two seeds
share many of them, so a split by seed alone would leak. Instead each caption
belongs to one split for good, by a hash of its text:

    u(c) = first 8 bytes of sha256(c) / 2^64 ∈ [0, 1)
    train       u < 0.6     prompts RL may train on
    validation  u < 0.8     anything a rule or a calibration decides (in-run eval, stopping)
    test        otherwise   reporting only

`split_captions(split, n, seed)` walks the scene stream of `seed` and keeps the
first n distinct captions of that split: different seeds give different caption
sets of the same split, never a caption of another split.
"""
from __future__ import annotations

import functools
import hashlib

import numpy as np

from .scenes import BACKGROUNDS, COUNT_WORDS, OBJECT_COLORS, POSITIONS, SHAPES, Scene, caption, sample_scene

SPLITS = ("train", "validation", "test")
_BOUNDS = {"train": (0.0, 0.6), "validation": (0.6, 0.8), "test": (0.8, 1.0)}


def caption_split(text: str) -> str:
    """The split a caption belongs to (a pure function of its text)."""
    u = int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big") / 2.0**64
    return next(s for s, (lo, hi) in _BOUNDS.items() if lo <= u < hi)


def all_captions() -> list[str]:
    """Every caption the world can write (count × colour × shape × position × background)."""
    return [caption(Scene(color, shape, count, position, bg, striped, ()))
            for count in COUNT_WORDS for color in OBJECT_COLORS for shape in SHAPES
            for position in (None, *POSITIONS) for bg in BACKGROUNDS for striped in (False, True)]


def split_captions(split: str, n: int, seed: int = 0) -> list[str]:
    """The first n distinct captions of `split` in the scene stream of `seed`."""
    return list(_split_captions(split, n, seed))


@functools.lru_cache(maxsize=64)
def _split_captions(split: str, n: int, seed: int) -> tuple[str, ...]:
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    available = sum(caption_split(c) == split for c in all_captions())
    if n > available:
        raise ValueError(f"the world has {available} distinct {split} captions; {n} were asked for")
    rng, out, seen = np.random.default_rng(seed), [], set()
    for _ in range(200 * n + 10_000):  # bounded: the world has ~1000 captions, a fifth per held-out split
        c = caption(sample_scene(rng))
        if c not in seen and caption_split(c) == split:
            out.append(c)
            if len(out) == n:
                return tuple(out)
        seen.add(c)
    raise RuntimeError(f"{len(out)} of {n} {split} captions found in the scene stream of seed {seed}")

"""The scorer interface and the registry of scorers by config name."""
from __future__ import annotations

from typing import Callable, Protocol

import numpy as np


class Scorer(Protocol):
    name: str

    def __call__(self, images: np.ndarray, prompts: list[str]) -> np.ndarray:
        """images: (B, H, W, 3) uint8; prompts: B strings -> (B,) float32 rewards."""
        ...


def _registry() -> dict[str, Callable[..., Scorer]]:
    from functools import partial

    from .clip_family import Aesthetic, ClipSimilarity
    from .color import ColorMatch
    from .hps import HPSv2
    from .http_adapter import HttpReward
    from .jpeg import JpegCompressibility, JpegIncompressibility
    from .ocr import OcrTextMatch
    from .scene_check import SceneCheck

    return {"jpeg_compressibility": JpegCompressibility, "jpeg_incompressibility": JpegIncompressibility,
            "color_match": ColorMatch, "http": HttpReward, "clip_score": partial(ClipSimilarity, "clip_score"),
            "pickscore": partial(ClipSimilarity, "pickscore"),
            "aesthetic": Aesthetic, "hpsv2": HPSv2, "ocr": OcrTextMatch,
            "scene_check": SceneCheck}


def available_scorers() -> list[str]:
    return sorted(_registry())


def build_scorer(name: str, **options) -> Scorer:
    """The scorer `name`, built with its options (e.g. url= for 'http')."""
    reg = _registry()
    if name not in reg:
        raise KeyError(f"unknown reward {name!r}; known: {', '.join(sorted(reg))}")
    return reg[name](**options)


def check_scores(name: str, scores: np.ndarray, n: int) -> np.ndarray:
    scores = np.asarray(scores, dtype=np.float32).reshape(-1)
    if scores.shape[0] != n:
        raise ValueError(f"reward {name!r} returned {scores.shape[0]} scores for {n} images")
    return scores

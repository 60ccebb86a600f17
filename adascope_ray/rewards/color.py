"""Colour match: does the image's mean colour match the colour the prompt names?

Weight-free and prompt-aware. The prompt's first colour word (see COLORS) is the
target; the reward is 1 − ‖mean_rgb/255 − target‖ / √3, in [0, 1] (1 = the image's
mean colour is exactly the named colour). A prompt that names no colour scores the
neutral 0.5 for every image, so its group has zero spread and is dropped from the
update rather than pushed anywhere.
"""
from __future__ import annotations

import math
import re

import numpy as np

COLORS: dict[str, tuple[float, float, float]] = {
    "red": (1.0, 0.0, 0.0), "green": (0.0, 1.0, 0.0), "blue": (0.0, 0.0, 1.0),
    "yellow": (1.0, 1.0, 0.0), "cyan": (0.0, 1.0, 1.0), "magenta": (1.0, 0.0, 1.0),
    "white": (1.0, 1.0, 1.0), "black": (0.0, 0.0, 0.0), "gray": (0.5, 0.5, 0.5),
    "orange": (1.0, 0.5, 0.0), "purple": (0.5, 0.0, 0.5),
}
_WORD = re.compile(r"[a-z]+")


def target_color(prompt: str) -> tuple[float, float, float] | None:
    for word in _WORD.findall(prompt.lower()):
        if word in COLORS:
            return COLORS[word]
    return None


class ColorMatch:
    name = "color_match"

    def __call__(self, images: np.ndarray, prompts: list[str]) -> np.ndarray:
        means = images.reshape(len(images), -1, 3).astype(np.float64).mean(1) / 255.0  # (B, 3)
        out = np.full(len(images), 0.5)
        for i, p in enumerate(prompts):
            target = target_color(p)
            if target is not None:
                out[i] = 1.0 - np.linalg.norm(means[i] - np.asarray(target)) / math.sqrt(3)
        return out.astype(np.float32)

"""JPEG (in)compressibility, as DDPO defines them: the image's size in kB
(1 kB = 1000 bytes) when saved as JPEG at quality 95; compressibility is minus the
size, incompressibility the size. Weight-free."""
from __future__ import annotations

import io

import numpy as np
from PIL import Image


def jpeg_size_kb(image: np.ndarray, quality: int = 95) -> float:
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="JPEG", quality=quality)
    return buf.tell() / 1000.0


class JpegCompressibility:
    name = "jpeg_compressibility"

    def __call__(self, images: np.ndarray, prompts: list[str]) -> np.ndarray:
        return -np.asarray([jpeg_size_kb(im) for im in images], dtype=np.float32)


class JpegIncompressibility:
    name = "jpeg_incompressibility"

    def __call__(self, images: np.ndarray, prompts: list[str]) -> np.ndarray:
        return np.asarray([jpeg_size_kb(im) for im in images], dtype=np.float32)

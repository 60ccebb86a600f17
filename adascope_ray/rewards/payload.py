"""The reward HTTP payload (no ray): parsing and validation, apart from the server
so it can be tested and fuzzed on its own.

    POST {"prompts": [str, ...], "images": [base64 PNG/JPEG, ...]}

Every problem raises PayloadError with an HTTP status (400 malformed, 413 too large)
and a message naming the field; nothing else escapes.
"""
from __future__ import annotations

import base64
import binascii
import io
import json

import numpy as np

MAX_SIDE = 4096  # pixels per image side


class PayloadError(ValueError):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


def parse_score_request(body: bytes, max_bytes: int, max_images: int = 4096) -> tuple[np.ndarray, list[str]]:
    """(images (n, H, W, 3) uint8, prompts) from a request body."""
    if len(body) > max_bytes:
        raise PayloadError(413, f"request body is {len(body)} bytes, the limit is {max_bytes}")
    try:
        doc = json.loads(body)
    except (ValueError, UnicodeDecodeError) as err:
        raise PayloadError(400, f"body is not JSON: {err}") from None
    if not isinstance(doc, dict):
        raise PayloadError(400, "body must be a JSON object with 'prompts' and 'images'")
    prompts, images = doc.get("prompts"), doc.get("images")
    for name, value in (("prompts", prompts), ("images", images)):
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise PayloadError(400, f"'{name}' must be a list of strings")
    if len(images) != len(prompts):
        raise PayloadError(400, f"{len(images)} images but {len(prompts)} prompts")
    if not images:
        raise PayloadError(400, "no images to score")
    if len(images) > max_images:
        raise PayloadError(413, f"{len(images)} images in one request, the limit is {max_images}")
    arrays = [decode_image(s, i) for i, s in enumerate(images)]
    if len({a.shape for a in arrays}) != 1:
        raise PayloadError(400, f"images differ in size: {sorted({a.shape[:2] for a in arrays})}")
    return np.stack(arrays), prompts


def decode_image(b64: str, index: int) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError

    try:
        raw = base64.b64decode(b64, validate=True)
    except (binascii.Error, ValueError):
        raise PayloadError(400, f"images[{index}]: not base64") from None
    try:
        with Image.open(io.BytesIO(raw)) as img:
            if max(img.size) > MAX_SIDE:
                raise PayloadError(413, f"images[{index}]: {img.size[0]}x{img.size[1]} exceeds {MAX_SIDE} px a side")
            return np.asarray(img.convert("RGB"))
    except PayloadError:
        raise
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, Image.DecompressionBombError) as err:
        raise PayloadError(400, f"images[{index}]: not a decodable image ({type(err).__name__})") from None

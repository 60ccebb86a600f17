"""OCR text match: does the image spell the prompt's quoted text? (no ray, no weights)

    target  the first quoted span of the prompt: 'a sign that says "Open 24h"' -> Open 24h
    read    what tesseract reads in the image
    score = 1 − min(lev(norm(read), norm(target)), |norm(target)|) / |norm(target)|   in [0, 1]

norm() lower-cases and drops whitespace; lev is the Levenshtein edit distance. 1 means
the text was read exactly, 0 that nothing of it was (the convention of Flow-GRPO's OCR
reward). The engine is the tesseract command-line program (Debian/Ubuntu:
`apt-get install tesseract-ocr`), run on each image as PNG through stdin/stdout; `path`
names the program when it is not `tesseract` on PATH.
"""
from __future__ import annotations

import io
import re
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from PIL import Image

from .clip_family import RewardWeightsError

_QUOTED = re.compile(r'"([^"]+)"|“([^”]+)”|\'([^\']+)\'')


def quoted_text(prompt: str) -> str | None:
    """The first span in double, curly or single quotes, or None."""
    m = _QUOTED.search(prompt)
    return None if m is None else next(g for g in m.groups() if g is not None)


def levenshtein(a: str, b: str) -> int:
    """Fewest single-character insertions, deletions and substitutions turning a into b."""
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i]
        for j, cb in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))
        prev = cur
    return prev[-1]


def text_match(read: str, target: str) -> float:
    r, t = "".join(read.split()).lower(), "".join(target.split()).lower()
    if not t:
        raise ValueError("the quoted target text is empty")
    return 1.0 - min(levenshtein(r, t), len(t)) / len(t)


def find_tesseract(path: str | None) -> str:
    exe = shutil.which(path or "tesseract")
    if exe is None:
        raise RewardWeightsError(f"reward 'ocr': OCR program {path or 'tesseract'!r} not found; install it "
                                 "(Debian/Ubuntu: apt-get install tesseract-ocr) or give its path in the reward's path")
    return exe


class OcrTextMatch:
    name = "ocr"

    def __init__(self, path: str | None = None, page_segmentation: int = 6, workers: int = 4):
        self.exe = find_tesseract(path)
        self.psm = page_segmentation  # tesseract --psm: 6 = one uniform block of text
        self.pool = ThreadPoolExecutor(max_workers=workers)  # one tesseract process per image

    def read(self, image: np.ndarray) -> str:
        """image: (H, W, 3) uint8 -> the text tesseract reads."""
        buf = io.BytesIO()
        Image.fromarray(image).save(buf, format="PNG")
        out = subprocess.run([self.exe, "stdin", "stdout", "--psm", str(self.psm), "-l", "eng"],
                             input=buf.getvalue(), capture_output=True, timeout=60)
        if out.returncode != 0:
            raise RuntimeError(f"reward 'ocr': tesseract failed: {out.stderr.decode(errors='replace').strip()[:300]}")
        return out.stdout.decode(errors="replace")

    def __call__(self, images: np.ndarray, prompts: list[str]) -> np.ndarray:
        targets = [quoted_text(p) for p in prompts]
        missing = [p for p, t in zip(prompts, targets) if t is None]
        if missing:
            raise ValueError(f"reward 'ocr': prompt {missing[0]!r} has no quoted text to match")
        reads = list(self.pool.map(self.read, images))
        return np.asarray([text_match(r, t) for r, t in zip(reads, targets)], dtype=np.float32)

"""Within-prompt diversity (docs/evaluation.md): how different a prompt's images are
from one another. A policy that collapses onto one image per prompt (a common form
of reward hacking) drives it towards 0 while its reward may still rise.

Notation: prompt p has n images with feature vectors f_1 … f_n (D,).

    div_p = (2 / (n (n − 1))) Σ_{i<j} dist(f_i, f_j)     mean over the n(n−1)/2 pairs

    pixels:  f = the image area-averaged to s × s, in [0, 1], flattened (D = 3 s²);
             dist = RMS difference = ‖f_i − f_j‖₂ / √D
    cosine:  f = an image embedding; dist = 1 − cos(f_i, f_j)

Fewer than two images give NaN.
"""
from __future__ import annotations

import numpy as np

PIXEL_SIDE = 16


def pixel_features(images: np.ndarray, side: int = PIXEL_SIDE) -> np.ndarray:
    """(B, H, W, 3) uint8 -> (B, 3·side²) float64 in [0, 1]: area averages over a
    side × side grid (H and W must be multiples of side, else the image is cropped)."""
    b, h, w, c = images.shape
    hs, ws = h // side, w // side
    if hs == 0 or ws == 0:
        raise ValueError(f"images of {h}×{w} are smaller than the {side}×{side} diversity grid")
    x = images[:, : hs * side, : ws * side].astype(np.float64) / 255.0
    return x.reshape(b, side, hs, side, ws, c).mean(axis=(2, 4)).reshape(b, -1)


def mean_pairwise_distance(features: np.ndarray, metric: str) -> np.ndarray:
    """features (P, n, D) -> (P,) div_p; metric 'rms' or 'cosine'."""
    p, n, d = features.shape
    if n < 2:
        return np.full(p, np.nan)
    f = features.astype(np.float64)
    if metric == "rms":
        sq = (f**2).sum(-1)                                                 # (P, n)
        d2 = sq[:, :, None] + sq[:, None, :] - 2 * f @ f.transpose(0, 2, 1)  # (P, n, n) squared distances
        dist = np.sqrt(np.clip(d2, 0, None) / d)
    elif metric == "cosine":
        u = f / np.linalg.norm(f, axis=-1, keepdims=True)
        dist = 1.0 - u @ u.transpose(0, 2, 1)
    else:
        raise ValueError(f"metric must be 'rms' or 'cosine', got {metric!r}")
    iu = np.triu_indices(n, k=1)
    return dist[:, iu[0], iu[1]].mean(-1)

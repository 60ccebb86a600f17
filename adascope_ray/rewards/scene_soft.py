"""scene_check with a gradient (no ray): the shapes world's checks made smooth in the
pixels, for gradient-based learners (learner.sqdf.reward=differentiable). The Serve
deployment's scene_check (scene_check.py) stays the logged and evaluated reward; this
is what the learner differentiates.

    x  (B, 3, H, W) in [0, 1];  p = 255 x, a pixel's colour;  palette colours q_j
       (the objects', the backgrounds', the stripes': scene_check's palette)
    d_j(p)   = ‖p − q_j‖                                   distance to palette colour j
    m_c(p)   = softmax_j(−d_j² / 2T²)_c · σ((R − d_c) / W)    soft "p is object colour c":
               nearest c (softmax at temperature T) and within R (scene_check's rule,
               its two hard edges made logistic)
    M        = Σ_p m_c(p)                                   the named colour's soft area
    n̂        = M / A_1                                      shapes of that area (A_1 as
                                                            scene_check's graded colour)
    checks   color       min(1, M / (count · A_1))           as scene_check graded
             count       2^(−|n̂ − count|_s),  |z|_s = √(z² + 0.01)   (area, not blobs)
             position    Σ_p m_c σ(into(p) / 0.025) / (M + ε)   share of the colour's mass in
                         the named half, into() the signed distance into it (image units)
             background  1 − ‖p̄_bg − q_named‖ / span, ≥ 0;  p̄_bg the mean colour weighted by
                         1 − Σ_c m_c (the median of scene_check: a mean here, for the gradient)
    score  = mean of the checks that apply

T and W come from the component's `soft` settings (rewards.components[].soft; default
T = 12, W = 5): wider ones smooth the reward further from scene_check's pass / fail.

Ours (the sources have no such reward): every choice above. It has no shape term: a
shape is a property of a blob, and blobs (connected components) have no gradient; on
the world's renders it scores matching captions above captions that differ in colour,
count, position or background (tests/unit/test_scene_soft.py), not in shape.
"""
from __future__ import annotations

import numpy as np
import torch

from ..world.scenes import BACKGROUNDS, OBJECT_COLORS, shape_area
from .scene_check import _BG_SPAN, _COLS, COLOR_RADIUS, SOFT_POS, parse_prompt

TEMPERATURE = 12.0  # T: RGB units of the softmax over palette colours (the default)
EDGE = 5.0          # W: RGB units of the logistic edge at COLOR_RADIUS (the default)


class SoftSceneCheck:
    """(x (B, 3, H, W) in [0, 1], prompts) -> (B,) scores in [0, 1], with a gradient in x."""

    name = "scene_check"

    def __init__(self, temperature: float = TEMPERATURE, edge: float = EDGE):
        self.temperature, self.edge = float(temperature), float(edge)
        self.palette = torch.as_tensor(_COLS, dtype=torch.float32)                # (J, 3)
        self.objects = list(OBJECT_COLORS)
        self.backgrounds = list(BACKGROUNDS)

    def memberships(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) -> (B, C, H, W): m_c for each object colour c."""
        p = 255.0 * x.permute(0, 2, 3, 1)                                          # (B, H, W, 3)
        q = self.palette.to(p)
        d2 = ((p[..., None, :] - q) ** 2).sum(-1)                                  # (B, H, W, J)
        nearest = torch.softmax(-d2 / (2 * self.temperature**2), dim=-1)[..., : len(self.objects)]
        within = torch.sigmoid((COLOR_RADIUS - d2[..., : len(self.objects)].clamp_min(1e-6).sqrt()) / self.edge)
        return (nearest * within).permute(0, 3, 1, 2)                               # (B, C, H, W)

    def checks(self, x: torch.Tensor, prompts: list[str]) -> list[dict[str, torch.Tensor]]:
        claims = [parse_prompt(p) for p in prompts]
        bad = next((p for p, c in zip(prompts, claims) if c is None), None)
        if bad is not None:
            raise ValueError(f"reward 'scene_check': {bad!r} is not a shapes-world prompt "
                             "(count, colour and shape words are needed)")
        b, _, h, w = x.shape
        m = self.memberships(x)                                                    # (B, C, H, W)
        v = (torch.arange(h, dtype=x.dtype, device=x.device) + 0.5) / h           # (H,) row centres
        u = (torch.arange(w, dtype=x.dtype, device=x.device) + 0.5) / w           # (W,) column centres
        into = {"left": (0.5 - u).expand(h, w), "right": (u - 0.5).expand(h, w),
                "top": (0.5 - v)[:, None].expand(h, w), "bottom": (v - 0.5)[:, None].expand(h, w)}
        rest = (1 - m.sum(1)).clamp_min(0)                                          # (B, H, W) background weight
        out = []
        for i, c in enumerate(claims):
            mc = m[i, self.objects.index(c.color)]                                 # (H, W)
            area, a1 = mc.sum(), shape_area(c.shape, h)
            n_hat = area / a1
            d = {"color": torch.clamp(area / (c.count * a1), max=1.0),
                 "count": 2.0 ** -torch.sqrt((n_hat - c.count) ** 2 + 0.01)}
            if c.position is not None:
                d["position"] = (mc * torch.sigmoid(into[c.position] / SOFT_POS)).sum() / (area + 1e-6)
            if c.background is not None:
                wgt = rest[i]
                mean = (255.0 * x[i] * wgt).sum((1, 2)) / (wgt.sum() + 1e-6)       # (3,)
                bg = torch.as_tensor(BACKGROUNDS[c.background], dtype=x.dtype, device=x.device)
                d["background"] = (1 - (mean - bg).norm() / _BG_SPAN).clamp_min(0)
            out.append(d)
        return out

    def __call__(self, x: torch.Tensor, prompts: list[str]) -> torch.Tensor:
        return torch.stack([torch.stack(list(d.values())).mean() for d in self.checks(x if x.dtype == torch.float64 else x.float(), prompts)])

    def numpy(self, images: np.ndarray, prompts: list[str]) -> np.ndarray:
        """(B, H, W, 3) uint8 -> (B,) scores, no gradient."""
        with torch.no_grad():
            x = torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).float() / 255.0
            return self(x, prompts).numpy()

"""Differentiable rewards for gradient-based learners (SQDF; no ray): the CLIP-family
scorers' own weights, loaded by the same scorers, with the preprocessing written in
torch so that the reward has a gradient with respect to the image. The Serve
deployments stay the source of the logged reward; these run on the learner's device.

    x (B, 3, H, W) float in [0, 1]
    1. resize the shortest side to s, the other to ⌊s · long / short⌋   (bicubic, antialiased:
       PIL's kernel, a = −0.5, which the numpy path's processors use)
    2. centre-crop c × c, top-left at ((H' − c) / 2, (W' − c) / 2), a half rounded
       down (transformers' CLIPProcessor) or to the nearest even (torchvision, HPSv2)
    3. normalise per channel: (x − mean) / std
    4. e = the model's image embedding; the reward's head as in clip_family.py / hps.py

Checked against the numpy path (uint8 images through CLIPProcessor / open_clip's
transform) to tolerance in tests/integration/test_differentiable_rewards.py; the
numpy path rounds the resized image to uint8, this one does not.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from ..config import DIFFERENTIABLE_REWARDS

DIFFERENTIABLE = DIFFERENTIABLE_REWARDS  # one list, in config.py


def clip_pixels(x: torch.Tensor, size: int, crop: int, mean, std, round_half: bool = False) -> torch.Tensor:
    """(B, 3, H, W) in [0, 1] -> (B, 3, crop, crop) normalised, differentiably.
    round_half: the crop offset as torchvision computes it (round), else floor."""
    h, w = x.shape[-2:]
    short, long = (h, w) if h <= w else (w, h)
    new_long = int(size * long / short)
    out = (size, new_long) if h <= w else (new_long, size)
    x = F.interpolate(x, size=out, mode="bicubic", align_corners=False, antialias=True)
    offset = (lambda n: int(round(n / 2))) if round_half else (lambda n: n // 2)  # noqa: E731
    top, left = offset(out[0] - crop), offset(out[1] - crop)
    x = x[..., top : top + crop, left : left + crop]
    m = torch.as_tensor(mean, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    s = torch.as_tensor(std, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    return (x - m) / s


class DifferentiableReward:
    """(x (B, 3, H, W) in [0, 1], prompts) -> (B,) reward, with a gradient in x."""

    def __init__(self, name: str, scorer):
        if name not in DIFFERENTIABLE:
            raise ValueError(f"reward {name!r} has no gradient; differentiable ones: {', '.join(DIFFERENTIABLE)}")
        if name == "scene_check":
            raise ValueError("scene_check's differentiable form is scene_soft.SoftSceneCheck (differentiable_reward builds it)")
        self.name, self.scorer = name, scorer
        if name == "hpsv2":
            cfg = scorer.model.visual.preprocess_cfg
            side = cfg["size"] if isinstance(cfg["size"], int) else cfg["size"][0]
            self.size, self.crop, self.mean, self.std = side, side, cfg["mean"], cfg["std"]
        else:
            ip = scorer.clip.processor.image_processor
            size = ip.size.get("shortest_edge") or min(ip.size.values())
            crop = ip.crop_size["height"] if ip.do_center_crop else size
            self.size, self.crop, self.mean, self.std = size, crop, ip.image_mean, ip.image_std
        self._text: dict[tuple[str, ...], torch.Tensor] = {}

    @property
    def device(self) -> torch.device:
        return self.scorer.device if self.name == "hpsv2" else self.scorer.clip.device

    def __call__(self, x: torch.Tensor, prompts: list[str]) -> torch.Tensor:
        from .clip_family import _projected

        px = clip_pixels(x.to(self.device, torch.float32), self.size, self.crop, self.mean, self.std,
                         round_half=self.name == "hpsv2")
        if self.name == "hpsv2":
            img = self.scorer.model.encode_image(px.to(self.scorer.dtype), normalize=True).float()
            return (img * self.text(prompts)).sum(-1)
        clip = self.scorer.clip
        e = _projected(clip.model.get_image_features(pixel_values=px.to(clip.dtype))).float()
        e = e / e.norm(dim=-1, keepdim=True)
        if self.name == "aesthetic":
            return self.scorer.head(e).squeeze(-1)
        return self.scorer.head((e * self.text(prompts)).sum(-1), clip.model)

    @torch.no_grad()
    def text(self, prompts: list[str]) -> torch.Tensor:
        """(B, D) unit text embeddings (no gradient: only the image is optimised), cached per prompt list."""
        key = tuple(prompts)
        if key not in self._text:
            if self.name == "hpsv2":
                tok = self.scorer.tokenizer(list(prompts)).to(self.device)
                self._text[key] = self.scorer.model.encode_text(tok, normalize=True).float()
            else:
                self._text[key] = self.scorer.clip.text(list(prompts))
            if len(self._text) > 256:
                self._text.pop(next(iter(self._text)))
        return self._text[key]


def differentiable_reward(component):
    """The differentiable form of a configured reward component (config.RewardComponentConfig):
    a DifferentiableReward, or scene_check's smooth form (scene_soft.py)."""
    from .base import build_scorer

    if component.name not in DIFFERENTIABLE:
        raise ValueError(f"reward {component.name!r} has no gradient; differentiable ones: {', '.join(DIFFERENTIABLE)}")
    if component.name == "scene_check":
        from .scene_soft import SoftSceneCheck

        soft = component.soft
        return SoftSceneCheck() if soft is None else SoftSceneCheck(soft.temperature, soft.edge)
    return DifferentiableReward(component.name, build_scorer(component.name, **component.scorer_options()))

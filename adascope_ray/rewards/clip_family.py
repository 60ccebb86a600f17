"""CLIP-based rewards loaded from local folders with transformers (no ray).

All three embed the image with the model's own CLIPProcessor (resize the shortest
side, centre-crop, normalise with the processor's mean and std), so preprocessing is
the model's, and differ in the head:

    clip_score  100 · max(cos(e_img, e_txt), 0)                  in [0, 100]
                (CLIPScore with w = 100, as torchmetrics reports it)
    pickscore   exp(logit_scale) · cos(e_img, e_txt)             about 18–24 for real
                images with the released PickScore_v1 weights (logit_scale = 100)
    aesthetic   MLP(e_img / ‖e_img‖), LAION's improved aesthetic predictor on CLIP
                ViT-L/14 embeddings                              about 1–10

e_img = get_image_features, e_txt = get_text_features (the projected embeddings).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch


class RewardWeightsError(FileNotFoundError):
    """A reward's weights are missing or unusable; the message names reward and path."""


def _folder(reward: str, field: str, path: str | None) -> Path:
    if not path:
        raise RewardWeightsError(f"reward {reward!r}: rewards.components[].{field} is required")
    p = Path(path).expanduser()
    need = ("config.json",) if field == "path" else ("preprocessor_config.json", "processor_config.json")
    if not any((p / n).is_file() for n in need):
        raise RewardWeightsError(f"reward {reward!r}: {field} {p} is not a transformers CLIP folder "
                                 f"(no {' or '.join(need)})")
    return p


def _projected(out) -> torch.Tensor:
    """get_*_features: a tensor in transformers 4, an output whose pooler_output is
    the projected embedding in transformers 5."""
    return out if isinstance(out, torch.Tensor) else out.pooler_output


def _device(device: str) -> torch.device:
    return torch.device("cuda" if device == "cuda" or (device == "auto" and torch.cuda.is_available()) else "cpu")


class _ClipEmbedder:
    def __init__(self, reward: str, path: str | None, processor_path: str | None, device: str, dtype: str):
        from transformers import CLIPModel, CLIPProcessor

        model_dir = _folder(reward, "path", path)
        proc_dir = _folder(reward, "processor_path", processor_path or path)
        self.device = _device(device)
        self.dtype = getattr(torch, dtype) if self.device.type == "cuda" else torch.float32
        try:
            self.model = CLIPModel.from_pretrained(str(model_dir), local_files_only=True, torch_dtype=self.dtype)
            self.processor = CLIPProcessor.from_pretrained(str(proc_dir), local_files_only=True)
        except (OSError, ValueError) as err:
            raise RewardWeightsError(f"reward {reward!r}: cannot load CLIP from {model_dir}: {err}") from None
        self.model.to(self.device).eval().requires_grad_(False)

    @torch.no_grad()
    def image(self, images: np.ndarray) -> torch.Tensor:
        """(B, H, W, 3) uint8 -> (B, D) unit-norm image embeddings (float32)."""
        px = self.processor(images=list(images), return_tensors="pt")["pixel_values"]
        e = _projected(self.model.get_image_features(pixel_values=px.to(self.device, self.dtype))).float()
        return e / e.norm(dim=-1, keepdim=True)

    @torch.no_grad()
    def text(self, prompts: list[str]) -> torch.Tensor:
        tok = self.processor(text=list(prompts), padding=True, truncation=True, return_tensors="pt")
        e = _projected(self.model.get_text_features(input_ids=tok["input_ids"].to(self.device),
                                                    attention_mask=tok["attention_mask"].to(self.device))).float()
        return e / e.norm(dim=-1, keepdim=True)


def image_embedder(name: str, scorer):
    """A CLIP-family scorer's image embedder as numpy: (n, H, W, 3) uint8 -> (n, D)
    unit-norm float32 (window.semantic.source = embedding)."""
    clip = getattr(scorer, "clip", None)
    if not isinstance(clip, _ClipEmbedder):
        raise ValueError(f"reward {name!r} has no CLIP image embedder (clip_score, pickscore and aesthetic have one)")
    return lambda images: clip.image(np.asarray(images, dtype=np.uint8)).cpu().numpy().astype(np.float32)


class ClipSimilarity:
    """clip_score or pickscore: the same embeddings, a different map of the cosine."""

    HEADS = {
        "clip_score": lambda cos, model: 100.0 * cos.clamp(min=0),
        "pickscore": lambda cos, model: model.logit_scale.exp().float() * cos,
    }

    def __init__(self, name: str, path: str | None = None, processor_path: str | None = None,
                 device: str = "auto", dtype: str = "float32"):
        self.name, self.head = name, self.HEADS[name]
        self.clip = _ClipEmbedder(name, path, processor_path, device, dtype)

    def __call__(self, images: np.ndarray, prompts: list[str]) -> np.ndarray:
        cos = (self.clip.image(images) * self.clip.text(prompts)).sum(-1)
        return self.head(cos, self.clip.model).cpu().numpy().astype(np.float32)


class AestheticHead(torch.nn.Module):
    """LAION's MLP, with its layer indices so the released state dict loads as is."""

    def __init__(self, dim: int):
        super().__init__()
        self.layers = torch.nn.Sequential(
            torch.nn.Linear(dim, 1024), torch.nn.Dropout(0.2), torch.nn.Linear(1024, 128), torch.nn.Dropout(0.2),
            torch.nn.Linear(128, 64), torch.nn.Dropout(0.1), torch.nn.Linear(64, 16), torch.nn.Linear(16, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


def load_state_file(reward: str, field: str, path: str | None) -> dict:
    """A state dict from .safetensors, or from a .pth/.pt file read with
    weights_only=True (no code runs); errors name the reward, the field and the path."""
    if not path:
        raise RewardWeightsError(f"reward {reward!r}: rewards.components[].{field} is required")
    p = Path(path).expanduser()
    if not p.is_file():
        raise RewardWeightsError(f"reward {reward!r}: {field} {p} not found")
    try:
        if p.suffix == ".safetensors":
            from safetensors.torch import load_file

            return load_file(p)
        return torch.load(p, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - any unreadable file gets the same named error
        raise RewardWeightsError(f"reward {reward!r}: {field} {p} is not a readable state dict ({err})") from None


class Aesthetic:
    name = "aesthetic"

    def __init__(self, path: str | None = None, processor_path: str | None = None, head_path: str | None = None,
                 device: str = "auto", dtype: str = "float32"):
        state = load_state_file(self.name, "head_path", head_path)
        self.clip = _ClipEmbedder(self.name, path, processor_path, device, dtype)
        dim = self.clip.model.config.projection_dim
        self.head = AestheticHead(dim)
        try:
            self.head.load_state_dict(state)
        except RuntimeError as err:
            raise RewardWeightsError(f"reward 'aesthetic': head_path {head_path} does not fit a {dim}-d CLIP "
                                     f"embedding: {str(err).splitlines()[0]}") from None
        self.head.to(self.clip.device).eval().requires_grad_(False)

    @torch.no_grad()
    def __call__(self, images: np.ndarray, prompts: list[str]) -> np.ndarray:
        return self.head(self.clip.image(images)).squeeze(-1).cpu().numpy().astype(np.float32)

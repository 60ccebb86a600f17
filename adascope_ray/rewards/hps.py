"""HPSv2 / HPSv2.1: an open_clip ViT-H-14 fine-tuned on human preferences (no ray).

    score = cos(e_img, e_txt)     about 0.2–0.35 for real images with the released weights

e_img, e_txt are open_clip's normalised image and text embeddings; images go through
the open_clip model's own validation transform (bicubic resize of the shortest side,
centre crop, OpenAI mean/std), prompts through its tokenizer. `path` is the released
checkpoint (HPS_v2_compressed.pt / HPS_v2.1_compressed.pt, read with weights_only=True,
or a .safetensors state dict). `open_clip_config` may name a JSON architecture file
(open_clip's model-config format) instead of the built-in `open_clip_model`.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from .clip_family import RewardWeightsError, _device, load_state_file


def _checkpoint(path: str | None) -> dict[str, torch.Tensor]:
    ckpt = load_state_file("hpsv2", "path", path)
    return ckpt.get("state_dict", ckpt)  # the released files nest it under "state_dict"


class HPSv2:
    name = "hpsv2"

    def __init__(self, path: str | None = None, open_clip_model: str = "ViT-H-14",
                 open_clip_config: str | None = None, device: str = "auto", dtype: str = "float32"):
        import open_clip

        state = _checkpoint(path)
        name = open_clip_model
        if open_clip_config:
            cfg = Path(open_clip_config).expanduser()
            if not cfg.is_file():
                raise RewardWeightsError(f"reward 'hpsv2': open_clip_config {cfg} not found")
            open_clip.add_model_config(cfg)
            name = cfg.stem
        self.device = _device(device)
        self.model, _, self.preprocess = open_clip.create_model_and_transforms(name, pretrained=None, device="cpu")
        try:
            self.model.load_state_dict(state)
        except RuntimeError as err:
            raise RewardWeightsError(f"reward 'hpsv2': {path} does not fit open_clip {name}: "
                                     f"{str(err).splitlines()[0]}") from None
        dt = getattr(torch, dtype) if self.device.type == "cuda" else torch.float32
        self.model.to(self.device, dt).eval().requires_grad_(False)
        self.dtype = dt
        self.tokenizer = open_clip.get_tokenizer(name)

    @torch.no_grad()
    def __call__(self, images: np.ndarray, prompts: list[str]) -> np.ndarray:
        from PIL import Image

        px = torch.stack([self.preprocess(Image.fromarray(im)) for im in images]).to(self.device, self.dtype)
        img = self.model.encode_image(px, normalize=True).float()
        txt = self.model.encode_text(self.tokenizer(list(prompts)).to(self.device), normalize=True).float()
        return (img * txt).sum(-1).cpu().numpy().astype(np.float32)

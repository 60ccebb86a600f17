"""Random-init CLIP reward folders of the real transformers classes (no ray): a tiny
one for tests and demos, or any size from a config (e.g. CLIP-H for benchmarks).

The folder is what a real reward checkpoint looks like: a CLIPModel saved with
save_pretrained (safetensors) and a CLIPProcessor (image processor + the offline CLIP
tokenizer), so rewards load it through the same code as released weights.
"""
from __future__ import annotations

import tempfile
from pathlib import Path

TINY_CLIP = {
    "text_config": {"vocab_size": 49408, "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2,
                    "num_attention_heads": 2, "max_position_embeddings": 77},
    "vision_config": {"image_size": 32, "patch_size": 8, "hidden_size": 32, "intermediate_size": 64,
                      "num_hidden_layers": 2, "num_attention_heads": 2},
    "projection_dim": 16,
}


def build_clip_folder(out_dir: str | Path, config: dict | None = None, seed: int = 0) -> Path:
    import torch
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel, CLIPProcessor

    from .tokenizer import build_clip_tokenizer

    out = Path(out_dir)
    cfg = CLIPConfig(**(config or TINY_CLIP))
    torch.manual_seed(seed)
    CLIPModel(cfg).save_pretrained(out, safe_serialization=True)
    side = cfg.vision_config.image_size
    image_processor = CLIPImageProcessor(size={"shortest_edge": side}, crop_size={"height": side, "width": side})
    with tempfile.TemporaryDirectory() as tmp:
        tokenizer = build_clip_tokenizer(tmp)
        CLIPProcessor(image_processor=image_processor, tokenizer=tokenizer).save_pretrained(out)
    return out


def build_aesthetic_head(path: str | Path, dim: int, seed: int = 0) -> Path:
    """A random LAION-layout aesthetic MLP saved as safetensors (or .pth by suffix)."""
    import torch

    from ..rewards.clip_family import AestheticHead

    torch.manual_seed(seed)
    state = AestheticHead(dim).state_dict()
    path = Path(path)
    if path.suffix == ".safetensors":
        from safetensors.torch import save_file

        save_file(state, path)
    else:
        torch.save(state, path)
    return path

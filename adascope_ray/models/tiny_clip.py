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


TINY_OPEN_CLIP = {
    "embed_dim": 16,
    "vision_cfg": {"image_size": 32, "layers": 2, "width": 32, "patch_size": 8, "head_width": 16},
    "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 2},
}


def build_hps_checkpoint(out_dir: str | Path, config: dict | None = None, seed: int = 0) -> tuple[Path, Path]:
    """An open_clip architecture JSON and a random-init checkpoint in HPSv2's layout
    ({"state_dict": ...}, torch.save), as the released files are. Returns (config, checkpoint)."""
    import json

    import open_clip
    import torch

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    cfg_path = out / "tiny-open-clip.json"
    cfg_path.write_text(json.dumps(config or TINY_OPEN_CLIP))
    open_clip.add_model_config(cfg_path)
    torch.manual_seed(seed)
    model = open_clip.create_model(cfg_path.stem, pretrained=None)
    ckpt = out / "hps_tiny.pt"
    torch.save({"state_dict": model.state_dict()}, ckpt)
    return cfg_path, ckpt

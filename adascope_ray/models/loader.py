"""Load a diffusion pipeline from a local folder and make its denoiser trainable."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from .tiny import ensure_tiny_checkpoint

BUILTIN_TINY = "builtin:tiny"
BUILTINS = {"builtin:tiny": "sd", "builtin:tiny-sd3": "sd3", "builtin:tiny-sdxl": "sdxl",  # built from config
            "builtin:shapes": "shapes"}  # the shapes world's trained model, shipped in the package
SHAPES_MODEL = Path(__file__).parents[1] / "world" / "weights" / "shapes-32px"


def resolve_model_path(model_cfg) -> Path:
    if model_cfg.path == "builtin:shapes":
        if not (SHAPES_MODEL / "model_index.json").is_file():
            raise FileNotFoundError(f"model.path: builtin:shapes is missing from the package ({SHAPES_MODEL.name}); "
                                    "train it with python -m adascope_ray.world.train --out <folder>")
        return SHAPES_MODEL
    if model_cfg.path in BUILTINS:
        return ensure_tiny_checkpoint(model_cfg.cache_dir, model_cfg.tiny_seed, model_cfg.resolution,
                                      family=BUILTINS[model_cfg.path])
    path = Path(os.path.expanduser(model_cfg.path))
    if not (path / "model_index.json").is_file():
        raise FileNotFoundError(
            f"model.path: {path} is not a diffusers pipeline folder (no model_index.json); "
            "give a local directory saved with save_pretrained, or 'builtin:tiny'"
        )
    return path


def pick_device(model_cfg) -> torch.device:
    if model_cfg.device == "cuda" or (model_cfg.device == "auto" and torch.cuda.is_available()):
        return torch.device("cuda")
    return torch.device("cpu")


def load_pipeline(model_cfg):
    """The pipeline in a local folder (the class its model_index.json names: SD1.5-,
    SDXL- or SD3-class), every module frozen, on the device. Components saved as absent
    (SD3 without T5, no safety checker) are loaded as None. A UNet pipeline's scheduler
    (PNDM in SD1.5 folders, Euler in SDXL ones) becomes DDIMScheduler built from the
    same config (same betas, spacing and prediction type; x̂0 not clipped, as in the
    policy's step; the last step ends at ᾱ_0, not 1, so its σ > 0 and it has a
    log-prob): DDIM with eta is the policy."""
    import json

    from diffusers import DDIMScheduler, DiffusionPipeline
    from diffusers.utils import logging as dlog
    from transformers.utils import logging as tlog

    dlog.disable_progress_bar()
    tlog.disable_progress_bar()
    path = resolve_model_path(model_cfg)
    index = json.loads((path / "model_index.json").read_text())
    absent = {k: None for k, v in index.items() if not k.startswith("_") and v == [None, None]}
    extra = {"requires_safety_checker": False} if "safety_checker" in index else {}
    pipe = DiffusionPipeline.from_pretrained(str(path), local_files_only=True, torch_dtype=getattr(torch, model_cfg.dtype),
                                             **absent, **extra)
    pipe.set_progress_bar_config(disable=True)
    if "FlowMatch" not in type(pipe.scheduler).__name__:
        pipe.scheduler = DDIMScheduler.from_config(pipe.scheduler.config, clip_sample=False, set_alpha_to_one=False)
    for module in pipe.components.values():
        if isinstance(module, torch.nn.Module):
            module.requires_grad_(False)
            module.eval()
    return pipe.to(pick_device(model_cfg))


def make_trainable(unet, model_cfg) -> list[torch.nn.Parameter]:
    """Attach LoRA adapters (diffusers' peft integration) or unfreeze the whole UNet.
    LoRA's B matrices start at zero, so the initial policy is the base model."""
    if model_cfg.trainable == "full":
        unet.requires_grad_(True)
    else:
        from peft import LoraConfig

        unet.add_adapter(LoraConfig(
            r=model_cfg.lora_rank, lora_alpha=model_cfg.lora_alpha,
            target_modules=list(model_cfg.lora_targets), init_lora_weights="gaussian",
        ))
    params = [p for p in unet.parameters() if p.requires_grad]
    for p in params:  # mixed precision: the frozen model in model.dtype, what trains in float32
        p.data = p.data.float()
    return params


def trainable_state(unet) -> dict[str, np.ndarray]:
    """Trainable parameters by name, as float32 numpy (cheap through the object store)."""
    return {n: p.detach().float().cpu().numpy() for n, p in unet.named_parameters() if p.requires_grad}


@torch.no_grad()
def load_trainable_state(unet, state: dict[str, np.ndarray]) -> None:
    params = dict(unet.named_parameters())
    missing = [n for n in state if n not in params]
    if missing:
        raise KeyError(f"weights update names {len(missing)} unknown parameters, e.g. {missing[0]}")
    for name, value in state.items():
        p = params[name]
        p.copy_(torch.as_tensor(np.array(value, copy=True)).to(device=p.device, dtype=p.dtype))


def lora_state_for_diffusers(unet) -> dict[str, torch.Tensor]:
    """The UNet's LoRA weights in the layout diffusers' save_lora_weights expects."""
    from peft.utils import get_peft_model_state_dict

    return {k: v.detach().cpu().contiguous() for k, v in get_peft_model_state_dict(unet).items()}

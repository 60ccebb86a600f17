"""The builtin tiny Stable-Diffusion-class model, built from config with a fixed seed.

Same classes as SD1.5 (UNet2DConditionModel, AutoencoderKL, CLIPTextModel,
CLIPTokenizer, DDIMScheduler), a few million random-init parameters. It is saved
with `save_pretrained` and then loaded with `from_pretrained(local_dir)`, so it goes
through exactly the path a real checkpoint does.
"""
from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import torch

TINY_VERSION = 2  # bump when the architecture below changes
TINY_SD3_VERSION = 1
TINY_SDXL_VERSION = 1


def build_tiny_pipeline(seed: int, resolution: int, tokenizer_dir: str | Path):
    from diffusers import AutoencoderKL, DDIMScheduler, StableDiffusionPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    from .tokenizer import build_clip_tokenizer

    torch.manual_seed(seed)
    latent = resolution // 2  # two VAE blocks = one 2x downsample
    unet = UNet2DConditionModel(
        sample_size=latent, in_channels=4, out_channels=4, layers_per_block=2,
        block_out_channels=(32, 64), down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"), cross_attention_dim=32,
    )
    vae = AutoencoderKL(
        sample_size=resolution, in_channels=3, out_channels=3, latent_channels=4,
        block_out_channels=(32, 64), down_block_types=("DownEncoderBlock2D",) * 2,
        up_block_types=("UpDecoderBlock2D",) * 2,
        # one normalisation group: per-channel latent differences (colour, layout)
        # reach the image; with one group per channel a random decoder erases them
        norm_num_groups=1,
    )
    text_encoder = CLIPTextModel(CLIPTextConfig(
        vocab_size=49408, hidden_size=32, intermediate_size=37, num_hidden_layers=2,
        num_attention_heads=4, max_position_embeddings=77, bos_token_id=49406,
        eos_token_id=49407, pad_token_id=49407,
    ))
    scheduler = DDIMScheduler(
        beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", clip_sample=False,
        set_alpha_to_one=False, steps_offset=1, prediction_type="epsilon",
    )
    return StableDiffusionPipeline(
        vae=vae, text_encoder=text_encoder, tokenizer=build_clip_tokenizer(tokenizer_dir),
        unet=unet, scheduler=scheduler, safety_checker=None, feature_extractor=None,
        requires_safety_checker=False,
    )


def build_tiny_sd3_pipeline(seed: int, resolution: int, tokenizer_dir: str | Path):
    """The SD3 classes (SD3Transformer2DModel, FlowMatchEulerDiscreteScheduler, two
    CLIPTextModelWithProjection encoders, no T5) at toy size, random weights."""
    from diffusers import AutoencoderKL, FlowMatchEulerDiscreteScheduler, SD3Transformer2DModel, StableDiffusion3Pipeline
    from transformers import CLIPTextConfig, CLIPTextModelWithProjection

    from .tokenizer import build_clip_tokenizer

    torch.manual_seed(seed)
    latent = resolution // 2
    transformer = SD3Transformer2DModel(
        sample_size=latent, patch_size=2, in_channels=4, out_channels=4, num_layers=2, attention_head_dim=16,
        num_attention_heads=2, joint_attention_dim=64, caption_projection_dim=32, pooled_projection_dim=64,
        pos_embed_max_size=max(32, latent),
    )
    vae = AutoencoderKL(
        sample_size=resolution, in_channels=3, out_channels=3, latent_channels=4, block_out_channels=(32, 64),
        down_block_types=("DownEncoderBlock2D",) * 2, up_block_types=("UpDecoderBlock2D",) * 2,
        norm_num_groups=1, shift_factor=0.0, scaling_factor=1.0,
    )

    def text_encoder():  # two of them: their hidden sizes add up to joint_attention_dim
        return CLIPTextModelWithProjection(CLIPTextConfig(
            vocab_size=49408, hidden_size=32, intermediate_size=37, num_hidden_layers=2, num_attention_heads=4,
            max_position_embeddings=77, projection_dim=32, bos_token_id=49406, eos_token_id=49407, pad_token_id=49407,
        ))

    tok = build_clip_tokenizer(tokenizer_dir)
    return StableDiffusion3Pipeline(
        transformer=transformer, scheduler=FlowMatchEulerDiscreteScheduler(shift=3.0), vae=vae,
        text_encoder=text_encoder(), tokenizer=tok, text_encoder_2=text_encoder(), tokenizer_2=tok,
        text_encoder_3=None, tokenizer_3=None,
    )


def build_tiny_sdxl_pipeline(seed: int, resolution: int, tokenizer_dir: str | Path):
    """The SDXL classes at toy size, random weights: a UNet with SDXL's "text_time"
    added conditioning (pooled text + the six size/crop ids), CLIPTextModel +
    CLIPTextModelWithProjection, and the EulerDiscreteScheduler SDXL folders ship (the
    loader swaps in DDIM built from its config, as for every UNet)."""
    from diffusers import AutoencoderKL, EulerDiscreteScheduler, StableDiffusionXLPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    from .tokenizer import build_clip_tokenizer

    torch.manual_seed(seed)
    latent = resolution // 2
    text = dict(vocab_size=49408, hidden_size=32, intermediate_size=37, num_hidden_layers=2, num_attention_heads=4,
                max_position_embeddings=77, bos_token_id=49406, eos_token_id=49407, pad_token_id=49407)
    unet = UNet2DConditionModel(
        sample_size=latent, in_channels=4, out_channels=4, layers_per_block=2, block_out_channels=(32, 64),
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"), up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=64,  # the two encoders' hidden states side by side: 32 + 32
        attention_head_dim=(2, 4), use_linear_projection=True,
        addition_embed_type="text_time", addition_time_embed_dim=8,
        projection_class_embeddings_input_dim=6 * 8 + 32,  # six time ids x 8 + pooled text (projection_dim)
    )
    vae = AutoencoderKL(
        sample_size=resolution, in_channels=3, out_channels=3, latent_channels=4, block_out_channels=(32, 64),
        down_block_types=("DownEncoderBlock2D",) * 2, up_block_types=("UpDecoderBlock2D",) * 2,
        norm_num_groups=1, scaling_factor=0.13025,
    )
    scheduler = EulerDiscreteScheduler(
        beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", steps_offset=1,
        timestep_spacing="leading", prediction_type="epsilon",
    )
    tok = build_clip_tokenizer(tokenizer_dir)
    return StableDiffusionXLPipeline(
        vae=vae, text_encoder=CLIPTextModel(CLIPTextConfig(**text)), tokenizer=tok,
        text_encoder_2=CLIPTextModelWithProjection(CLIPTextConfig(**text, projection_dim=32)), tokenizer_2=tok,
        unet=unet, scheduler=scheduler, force_zeros_for_empty_prompt=True, add_watermarker=False,
    )


BUILDERS = {  # family -> (folder prefix, builder)
    "sd": (f"tiny-sd-v{TINY_VERSION}", build_tiny_pipeline),
    "sd3": (f"tiny-sd3-v{TINY_SD3_VERSION}", build_tiny_sd3_pipeline),
    "sdxl": (f"tiny-sdxl-v{TINY_SDXL_VERSION}", build_tiny_sdxl_pipeline),
}


def ensure_tiny_checkpoint(cache_dir: str | Path, seed: int, resolution: int, family: str = "sd") -> Path:
    """Build and save the tiny pipeline once; later calls return the saved folder.
    The folder appears atomically (built in a temporary sibling, then renamed)."""
    root = Path(os.path.expanduser(str(cache_dir)))
    name, build = BUILDERS[family]
    target = root / f"{name}-seed{seed}-{resolution}px"
    if (target / "model_index.json").is_file():
        return target
    root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".building-", dir=root))
    try:
        pipe = build(seed, resolution, tmp / "_tokenizer_src")
        pipe.save_pretrained(tmp / "pipe")
        try:
            os.rename(tmp / "pipe", target)
        except OSError:  # another process won the race: use its copy
            if not (target / "model_index.json").is_file():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target

"""Floating-point operations of one denoiser forward pass, SD1.5 against SD3.5 sizes.

    .venv/bin/python benchmarks/denoiser_flops.py

Builds each denoiser from its published architecture on torch's meta device (shapes
only: no weights are allocated, nothing is computed) and counts the operations of one
conditional forward pass of batch 1 with torch.utils.flop_counter.FlopCounterMode
(matrix products, convolutions and attention; element-wise operations are not
counted). Models:

    sd15    UNet2DConditionModel, 860 M weights, 77 text tokens of width 768
    sd35m   SD3Transformer2DModel as SD3.5 Medium (24 blocks, 13 with dual attention), 2.2 B
    sd35l   SD3Transformer2DModel as SD3.5 Large (38 blocks), 8.1 B
            both with 333 text tokens (77 CLIP + 256 T5) of width 4096

at 512 and 1024 px. throughput_model.py --flops scales the SD1.5 role times measured
on a GPU by these ratios. Writes benchmarks/results/denoiser_flops.json.
"""
from __future__ import annotations

import time

import torch
from torch.utils.flop_counter import FlopCounterMode

from common import ROOT, write_result

import adascope_ray  # noqa: F401,E402 - diffusers' import fix

SD35 = {  # the published transformer configs, less what does not change the count
    "sd35m": dict(num_layers=24, num_attention_heads=24, caption_projection_dim=1536, pos_embed_max_size=384,
                  dual_attention_layers=tuple(range(13))),
    "sd35l": dict(num_layers=38, num_attention_heads=38, caption_projection_dim=2432, pos_embed_max_size=192),
}
TEXT_TOKENS = 333


def _flops(model, **inputs) -> int:
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(**inputs)
    return counter.get_total_flops()


def count(name: str, px: int) -> dict:
    from diffusers import SD3Transformer2DModel, UNet2DConditionModel

    side = px // 8  # the VAE's latent: 8x smaller a side
    with torch.device("meta"):
        if name == "sd15":
            model = UNet2DConditionModel(sample_size=64, cross_attention_dim=768, attention_head_dim=8,
                                         block_out_channels=(320, 640, 1280, 1280), layers_per_block=2)
            flops = _flops(model, sample=torch.empty(1, 4, side, side), timestep=torch.tensor([500]),
                           encoder_hidden_states=torch.empty(1, 77, 768))
        else:
            model = SD3Transformer2DModel(sample_size=128, patch_size=2, in_channels=16, out_channels=16,
                                          attention_head_dim=64, joint_attention_dim=4096,
                                          pooled_projection_dim=2048, qk_norm="rms_norm", **SD35[name])
            flops = _flops(model, hidden_states=torch.empty(1, 16, side, side),
                           encoder_hidden_states=torch.empty(1, TEXT_TOKENS, 4096),
                           pooled_projections=torch.empty(1, 2048), timestep=torch.tensor([500.0]))
    return {"model": name, "px": px, "weights": sum(p.numel() for p in model.parameters()), "flops": flops}


def main() -> None:
    rows = []
    for name in ("sd15", "sd35m", "sd35l"):
        for px in (512, 1024):
            t = time.perf_counter()
            rows.append(count(name, px))
            print(f"  {name:6s} {px:5d} px  {rows[-1]['weights'] / 1e9:5.2f} B weights  "
                  f"{rows[-1]['flops'] / 1e12:7.2f} TFLOP a forward pass  ({time.perf_counter() - t:.0f} s to count)",
                  flush=True)
    base = next(r["flops"] for r in rows if r["model"] == "sd15" and r["px"] == 512)
    for r in rows:
        r["ratio_to_sd15_512"] = r["flops"] / base
    path = write_result("denoiser_flops", {"text_tokens_sd35": TEXT_TOKENS, "rows": rows})
    print(f"wrote {path.relative_to(ROOT)}")


if __name__ == "__main__":
    main()

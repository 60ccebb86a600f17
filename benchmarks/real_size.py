"""The benchmarks' measurements at real model sizes on a GPU, with random weights.

    python benchmarks/real_size.py [--parts window,scorer,publish] [--work DIR] [--out DIR] [--scale sd15|tiny]

Builds from config, with random weights, a Stable Diffusion 1.5 pipeline (UNet 860 M,
ViT-L/14 text encoder, the SD VAE) and PickScore-style CLIP scorers of three released
sizes (B/32, L/14, H/14), saves each as a local folder and loads it through the
project's own loaders, as a released checkpoint would be. Then, in one process and
without Ray (the code each actor runs, not the transport between them):

    window   benchmarks/window_cost.py's measurement on configs/sd15_pickscore.yaml
             (512 px, 50 steps, CFG 5, LoRA r=4, bf16): per strategy the cost per
             iteration, sample / update seconds and the learner's peak GPU memory;
             one warm-up iteration, then the mean of the rest
    scorer   the pickscore reward's images/s against batch size for each CLIP size
             (512 px images, as the sampler sends them; the processor's resize included)
    publish  Learner.publish() -> Sampler.set_weights() for SD1.5 LoRA rank 4-64 and
             the whole UNet: the device-to-host copy and the host-to-device load that
             frame every publication, median of 3 after a warm-up

`--scale tiny` runs the same code on toy sizes (a CPU check of the script). Writes
real_size.json with the machine (GPU included), config and commit. Passing means
nothing here: it reports what real sizes cost.
"""
from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from common import CLIP_SIZES, ROOT, InProcessLoop, write_result


from adascope_ray.config import load_config  # noqa: E402

PROMPTS = ["a photo of a red fox in the snow", "a watercolor painting of a lighthouse at dawn",
           "an astronaut riding a horse on the moon", "a bowl of ramen, studio lighting"]
SD15 = {  # Stable Diffusion 1.5's shapes; `tiny` keeps the classes at toy size
    "sd15": {"unet": dict(sample_size=64, block_out_channels=(320, 640, 1280, 1280), cross_attention_dim=768,
                          attention_head_dim=8),
             "vae": dict(sample_size=512, block_out_channels=(128, 256, 512, 512)),
             "text": dict(hidden_size=768, intermediate_size=3072, num_hidden_layers=12, num_attention_heads=12,
                          projection_dim=768), "resolution": 512, "steps": 50, "clips": ["base32", "large14", "h14"]},
    "tiny": {"unet": dict(sample_size=8, block_out_channels=(32, 32, 64, 64), cross_attention_dim=32,
                          attention_head_dim=4, norm_num_groups=8),
             "vae": dict(sample_size=64, block_out_channels=(8, 8, 16, 16), norm_num_groups=8),
             "text": dict(hidden_size=32, intermediate_size=37, num_hidden_layers=2, num_attention_heads=4,
                          projection_dim=32), "resolution": 64, "steps": 4, "clips": ["tiny"]},
}


def build_sd15(out: Path, scale: str, seed: int = 0) -> Path:
    """An SD1.5-class pipeline of `scale`'s shapes, random weights, saved in float16."""
    from diffusers import AutoencoderKL, DDIMScheduler, StableDiffusionPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    from adascope_ray.models.tokenizer import build_clip_tokenizer

    s = SD15[scale]
    torch.manual_seed(seed)
    with torch.device("cuda" if torch.cuda.is_available() else "cpu"):  # random init on the GPU: seconds, not minutes
        unet = UNet2DConditionModel(
            in_channels=4, out_channels=4, layers_per_block=2,
            down_block_types=("CrossAttnDownBlock2D",) * 3 + ("DownBlock2D",),
            up_block_types=("UpBlock2D",) + ("CrossAttnUpBlock2D",) * 3, **s["unet"])
        vae = AutoencoderKL(in_channels=3, out_channels=3, latent_channels=4, layers_per_block=2,
                            down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4,
                            **s["vae"])
        text = CLIPTextModel(CLIPTextConfig(vocab_size=49408, max_position_embeddings=77, hidden_act="quick_gelu",
                                            bos_token_id=49406, eos_token_id=49407, pad_token_id=49407, **s["text"]))
    scheduler = DDIMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", clip_sample=False,
                              set_alpha_to_one=False, steps_offset=1, prediction_type="epsilon")
    with tempfile.TemporaryDirectory() as tmp:
        pipe = StableDiffusionPipeline(vae=vae, text_encoder=text, tokenizer=build_clip_tokenizer(tmp), unet=unet,
                                       scheduler=scheduler, safety_checker=None, feature_extractor=None,
                                       requires_safety_checker=False)
        pipe.to(torch.float16).save_pretrained(out, safe_serialization=True)
    print(f"built {out.name}: UNet {sum(p.numel() for p in unet.parameters()) / 1e6:.0f} M parameters", flush=True)
    return out


def build_clips(work: Path, names: list[str]) -> dict[str, Path]:
    from adascope_ray.models.tiny_clip import TINY_CLIP, build_clip_folder

    out = {}
    for name in names:
        with torch.device("cuda" if torch.cuda.is_available() else "cpu"):
            out[name] = build_clip_folder(work / f"clip-{name}", TINY_CLIP if name == "tiny" else CLIP_SIZES[name])
        print(f"built clip-{name}", flush=True)
    return out


def run_config(work: Path, scale: str, model: Path, clip: Path) -> Path:
    """configs/sd15_pickscore.yaml with the random folders and a few prompts filled in."""
    s = SD15[scale]
    cfg = work / "sd15_random.yaml"
    cfg.write_text("\n".join([
        f"base: {ROOT / 'configs' / 'sd15_pickscore.yaml'}",
        "data: {prompts_per_iteration: 2, group_size: 8, prompts_file: null, prompts: %s}" % PROMPTS,
        f"model: {{path: {model}, resolution: {s['resolution']}, device: auto}}",
        f"sampling: {{num_steps: {s['steps']}}}",
        f"rewards: {{components: [{{name: pickscore, path: {clip}, processor_path: {clip}, device: auto, dtype: bfloat16}}]}}",
    ]) + "\n")
    return cfg


def part_window(cfg_path: Path, strategies: list[str], iterations: int) -> list[dict]:
    from window_cost import run_strategy

    base = load_config(cfg_path, [])
    rows = []
    for strategy in strategies:
        if torch.cuda.is_available():
            torch.cuda.reset_peak_memory_stats()
        r = run_strategy(base, strategy, iterations, warmup=1)
        r["peak_gpu_gb"] = torch.cuda.max_memory_allocated() / 2**30 if torch.cuda.is_available() else None
        rows.append(r)
        print(f"  window {strategy:<14} cost {r['cost']:.0f}  sample {r['sample_s']:.2f} s  update {r['update_s']:.2f} s"
              f"  steps/traj {r['steps_per_traj']:.1f}", flush=True)
    return rows


def part_scorer(clips: dict[str, Path], resolution: int, batches: list[int], seconds: float = 3.0) -> list[dict]:
    from adascope_ray.rewards import build_scorer

    rng = np.random.default_rng(0)
    rows = []
    for name, path in clips.items():
        scorer = build_scorer("pickscore", path=str(path), processor_path=str(path), device="auto", dtype="bfloat16")
        params = sum(p.numel() for p in scorer.clip.model.parameters())
        for b in batches:
            images = rng.integers(0, 256, (b, resolution, resolution, 3), dtype=np.uint8)
            prompts = [PROMPTS[i % len(PROMPTS)] for i in range(b)]
            scorer(images, prompts)  # warm-up
            n, t0 = 0, time.perf_counter()
            while time.perf_counter() - t0 < seconds:
                scorer(images, prompts)
                n += b
            rows.append({"clip": name, "params_m": params / 1e6, "batch": b,
                         "images_per_s": n / (time.perf_counter() - t0)})
            print(f"  scorer {name:<8} batch {b:>3}: {rows[-1]['images_per_s']:.1f} images/s", flush=True)
        del scorer
    return rows


def part_publish(cfg_path: Path, ranks: list[int], repeats: int = 3) -> list[dict]:
    from adascope_ray.learner import Learner
    from adascope_ray.rollout import Sampler

    rows = []
    for label, extra in [(f"LoRA r={r}", [f"model.lora_rank={r}", f"model.lora_alpha={r}"]) for r in ranks] + \
                        [("UNet (full)", ["model.trainable=full", "model.dtype=float32"])]:
        cfg = load_config(cfg_path, extra)
        learner = Learner(cfg.model, cfg.sampling, cfg.learner, cfg.window, cfg.advantage)
        sampler = Sampler(cfg.model, cfg.sampling, cfg.sampler, pool=cfg.window.pool)
        pack, load = [], []
        for i in range(repeats + 1):
            learner.version += 1  # each publication a newer version, as after an update
            t0 = time.perf_counter()
            update = learner.publish()
            t1 = time.perf_counter()
            sampler.set_weights(update)
            if torch.cuda.is_available():
                torch.cuda.synchronize()
            t2 = time.perf_counter()
            if i:
                pack.append(t1 - t0)
                load.append(t2 - t1)
        nbytes = sum(v.nbytes for v in update.state.values())
        rows.append({"trainable": label, "params_m": nbytes / 4 / 1e6, "bytes_mb": nbytes / 1e6,
                     "publish_s": statistics.median(pack), "set_weights_s": statistics.median(load)})
        print(f"  publish {label:<12} {nbytes / 1e6:9.1f} MB  publish {rows[-1]['publish_s'] * 1e3:8.1f} ms"
              f"  set_weights {rows[-1]['set_weights_s'] * 1e3:8.1f} ms", flush=True)
        del learner, sampler
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--parts", default="window,scorer,publish")
    ap.add_argument("--scale", default="sd15", choices=sorted(SD15))
    ap.add_argument("--work", default=None, help="folder for the random-init model folders (default: a temporary one)")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results"))
    ap.add_argument("--strategies", default="full,fraction,random_window,sliding,adascope")
    ap.add_argument("--iterations", type=int, default=2, help="per strategy, the first one a warm-up")
    ap.add_argument("--batches", default="1,4,16,64")
    ap.add_argument("--ranks", default="4,16,64")
    args = ap.parse_args()
    if args.iterations < 2:
        ap.error("--iterations: at least 2 (the first of each strategy is a warm-up)")
    parts = args.parts.split(",")
    result: dict = {"scale": args.scale, "parts": parts}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(args.work or tmp)
        work.mkdir(parents=True, exist_ok=True)
        s = SD15[args.scale]
        clips = build_clips(work, s["clips"])
        cfg = run_config(work, args.scale, build_sd15(work / f"{args.scale}-random", args.scale), clips[s["clips"][-1]])
        result["config"] = "configs/sd15_pickscore.yaml + " + ", ".join(
            ["data: 2 prompts x 8", f"model: random {args.scale} at {s['resolution']} px", f"{s['steps']} steps",
             f"pickscore on random clip-{s['clips'][-1]}"])
        for part in parts:  # each part saved as soon as it ends: a later failure keeps it
            t0 = time.perf_counter()
            if part == "window":
                result["window"] = part_window(cfg, args.strategies.split(","), args.iterations)
            elif part == "scorer":
                result["scorer"] = part_scorer(clips, s["resolution"], [int(b) for b in args.batches.split(",")])
            elif part == "publish":
                result["publish"] = part_publish(cfg, [int(r) for r in args.ranks.split(",")])
            else:
                ap.error(f"unknown part {part!r}; choose from window, scorer, publish")
            print(f"{part}: {time.perf_counter() - t0:.0f} s", flush=True)
            path = write_result(f"real_size_{args.scale}", result, args.out)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()

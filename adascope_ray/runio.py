"""The run folder: resolved config, metrics.jsonl, image grids, checkpoints (no ray).

    <run>/config.yaml  <run>/metrics.jsonl  <run>/samples/iter_XXXX.png
    <run>/actors.json  (where each actor runs: node, pid, placement group and bundle)
    <run>/checkpoints/step_XXXX/   (written to a temporary folder, then renamed)
"""
from __future__ import annotations

import json
import math
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np


class RunDirError(ValueError):
    """The run folder cannot be used as asked."""


class RunDir:
    def __init__(self, root: str | Path):
        self.root = Path(root)

    @classmethod
    def create(cls, output_dir: str, name: str, overwrite: bool) -> "RunDir":
        root = Path(output_dir).expanduser() / name
        if root.exists() and any(root.iterdir()):
            if not overwrite:
                raise RunDirError(f"run folder {root} already holds a run; pick another run.name "
                                  "or pass run.overwrite=true")
            shutil.rmtree(root)
        (root / "samples").mkdir(parents=True, exist_ok=True)
        (root / "checkpoints").mkdir(exist_ok=True)
        return cls(root)

    def write_config(self, text: str) -> None:
        _atomic_write(self.root / "config.yaml", text.encode())

    def write_json(self, name: str, obj) -> None:
        _atomic_write(self.root / name, json.dumps(_jsonable(obj), indent=1).encode())

    def append_metrics(self, row: dict) -> None:
        with open(self.root / "metrics.jsonl", "a", encoding="utf-8") as f:
            f.write(json.dumps(_jsonable(row)) + "\n")
            f.flush()
            os.fsync(f.fileno())

    def read_metrics(self) -> list[dict]:
        path = self.root / "metrics.jsonl"
        return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []

    def save_grid(self, iteration: int, images: np.ndarray, prompts: list[str], rewards: np.ndarray,
                  group_size: int) -> Path:
        from .viz import image_grid

        path = self.root / "samples" / f"iter_{iteration:04d}.png"
        image_grid(images, prompts, rewards, group_size).save(path)
        return path

    def save_checkpoint(self, step: int, ckpt, meta: dict) -> Path:
        """Write a checkpoint folder atomically; returns its final path."""
        import torch

        final = self.root / "checkpoints" / f"step_{step:04d}"
        tmp = Path(tempfile.mkdtemp(prefix=f".tmp-step_{step:04d}-", dir=self.root / "checkpoints"))
        try:
            tensors = {k: torch.from_numpy(np.array(v)) for k, v in ckpt.state.items()}
            if ckpt.kind == "lora":
                from diffusers import StableDiffusionPipeline

                StableDiffusionPipeline.save_lora_weights(tmp, unet_lora_layers=tensors, safe_serialization=True)
            else:
                from safetensors.torch import save_file

                (tmp / "unet").mkdir()
                save_file(tensors, tmp / "unet" / "diffusion_pytorch_model.safetensors")
                (tmp / "unet" / "config.json").write_text(json.dumps(_jsonable(ckpt.unet_config), indent=1))
            (tmp / "trainer_state.json").write_text(json.dumps(_jsonable({**meta, "kind": ckpt.kind, "version": ckpt.version}), indent=1))
            if final.exists():
                shutil.rmtree(final)
            os.rename(tmp, final)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        return final


def _atomic_write(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def _jsonable(x):
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if isinstance(x, np.ndarray):
        return _jsonable(x.tolist())
    if isinstance(x, (np.floating, float)):
        v = float(x)
        return v if math.isfinite(v) else None
    if isinstance(x, np.integer):
        return int(x)
    return x

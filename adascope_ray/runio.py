"""The run folder: resolved config, metrics.jsonl, image grids, checkpoints (no ray).

    <run>/config.yaml  <run>/metrics.jsonl  <run>/samples/iter_XXXX.png
    <run>/eval.jsonl   <run>/samples/eval_XXXX.png   (in-run evaluation, after XXXX updates)
    <run>/actors.json  (where each actor runs: node, pid, placement group and bundle)
    <run>/checkpoints/step_XXXX/   (written to a temporary folder, then renamed; a step written
                                    again moves the old copy aside until the new one is in place)
        pytorch_lora_weights.safetensors | unet/ | transformer/   the weights, diffusers layout
        resume/learner.safetensors, resume/learner.json   exact learner state
        trainer_state.json   iteration, version
        manifest.json        sha256 of every file above (written last)
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


class CheckpointError(ValueError):
    """A checkpoint that is missing, incomplete or damaged; the message names the file."""


class RunDir:
    def __init__(self, root: str | Path):
        self.root = Path(root)

    @classmethod
    def create(cls, output_dir: str, name: str, overwrite: bool) -> "RunDir":
        if name in ("", ".", "..") or Path(name).name != name or "/" in name or "\\" in name:
            raise RunDirError(f"run.name {name!r} is not a plain folder name")
        root = Path(output_dir).expanduser() / name
        if root.exists() and any(f.is_file() for f in root.rglob("*")):  # empty folders hold no run
            if not overwrite:
                raise RunDirError(f"run folder {root} already holds a run; continue it with --resume {root}, "
                                  "pick another run.name, or pass run.overwrite=true")
            _check_replaceable(root, Path(output_dir).expanduser())
            shutil.rmtree(root)
        (root / "samples").mkdir(parents=True, exist_ok=True)
        (root / "checkpoints").mkdir(exist_ok=True)
        return cls(root)

    @classmethod
    def existing(cls, root: str | Path) -> "RunDir":
        root = Path(root).expanduser()
        if not (root / "config.yaml").is_file():
            raise RunDirError(f"--resume {root}: not a run folder (no config.yaml)")
        return cls(root)

    def write_config(self, text: str) -> None:
        _atomic_write(self.root / "config.yaml", text.encode())

    def write_json(self, name: str, obj) -> None:
        _atomic_write(self.root / name, json.dumps(_jsonable(obj), indent=1).encode())

    def append_metrics(self, row: dict) -> None:
        _append_jsonl(self.root / "metrics.jsonl", row)

    def read_metrics(self) -> list[dict]:
        return _read_jsonl(self.root / "metrics.jsonl")

    def append_eval(self, row: dict) -> None:
        """One in-run evaluation: every sample's reward (cluster/evaluator.py)."""
        _append_jsonl(self.root / "eval.jsonl", row)

    def read_evals(self) -> list[dict]:
        return _read_jsonl(self.root / "eval.jsonl")

    def truncate_evals(self, updates: int) -> list[dict]:
        """Keep evaluations made after at most `updates` updates; returns them."""
        return _keep_jsonl(self.root / "eval.jsonl", lambda r: r["updates"] <= updates)

    def save_grid(self, iteration: int, images: np.ndarray, prompts: list[str], rewards: np.ndarray,
                  group_size: int, prefix: str = "iter") -> Path:
        from .viz import image_grid

        path = self.root / "samples" / f"{prefix}_{iteration:04d}.png"
        image_grid(images, prompts, rewards, group_size).save(path)
        return path

    def save_checkpoint(self, step: int, ckpt, meta: dict, learner_state=None, name: str | None = None) -> Path:
        """Write a checkpoint folder (checkpoints/step_XXXX, or checkpoints/<name>)
        atomically; returns its final path. A crash while writing leaves only a .tmp-*
        folder, which is ignored and removed later."""
        import torch

        name = name or f"step_{step:04d}"
        final = self.root / "checkpoints" / name
        tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{name}-", dir=self.root / "checkpoints"))
        try:
            tensors = {k: torch.from_numpy(np.array(v)) for k, v in ckpt.state.items()}
            if ckpt.kind == "lora" and ckpt.denoiser == "transformer":
                from diffusers import StableDiffusion3Pipeline

                StableDiffusion3Pipeline.save_lora_weights(tmp, transformer_lora_layers=tensors, safe_serialization=True)
            elif ckpt.kind == "lora":
                from diffusers import StableDiffusionPipeline

                StableDiffusionPipeline.save_lora_weights(tmp, unet_lora_layers=tensors, safe_serialization=True)
            else:
                from safetensors.torch import save_file

                (tmp / ckpt.denoiser).mkdir()
                save_file(tensors, tmp / ckpt.denoiser / "diffusion_pytorch_model.safetensors")
                (tmp / ckpt.denoiser / "config.json").write_text(json.dumps(_jsonable(ckpt.config), indent=1))
            (tmp / "trainer_state.json").write_text(json.dumps(_jsonable({**meta, "kind": ckpt.kind, "version": ckpt.version}), indent=1))
            if learner_state is not None:
                from safetensors.torch import save_file

                (tmp / "resume").mkdir()
                save_file({k: v.contiguous() for k, v in learner_state.tensors.items()}, tmp / "resume" / "learner.safetensors")
                (tmp / "resume" / "learner.json").write_text(json.dumps({"version": learner_state.version, **learner_state.meta}))
            _write_manifest(tmp)
            _fsync_tree(tmp)
            aside = final.with_name(f".replaced-{final.name}")
            if final.exists():  # never a moment with neither copy: the old one is moved aside first
                shutil.rmtree(aside, ignore_errors=True)
                os.rename(final, aside)
            os.rename(tmp, final)
            shutil.rmtree(aside, ignore_errors=True)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        return final


    def checkpoints(self) -> list[Path]:
        """Complete checkpoint folders, oldest first. A checkpoint moved aside by a
        replacement that was interrupted before the new one took its place is restored."""
        for aside in (self.root / "checkpoints").glob(".replaced-*"):
            final = aside.with_name(aside.name.removeprefix(".replaced-"))
            if final.exists():
                shutil.rmtree(aside, ignore_errors=True)
            else:
                os.rename(aside, final)
        return sorted(p for p in (self.root / "checkpoints").glob("step_*") if p.is_dir())

    def prune_checkpoints(self, keep: int) -> None:
        """Keep the newest `keep` checkpoints; remove older ones and stale .tmp-* folders."""
        for p in self.checkpoints()[:-keep]:
            shutil.rmtree(p, ignore_errors=True)
        for p in (self.root / "checkpoints").glob(".tmp-*"):
            shutil.rmtree(p, ignore_errors=True)

    def latest_resumable(self) -> Path | None:
        found = [p for p in self.checkpoints() if (p / "resume" / "learner.safetensors").exists()]
        return found[-1] if found else None

    def load_resume(self, ckpt_dir: Path):
        """(iteration, LearnerState) from a checkpoint, after checking every file
        against its manifest. Nothing here unpickles."""
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        from .types import LearnerState

        verify_checkpoint(ckpt_dir)
        try:
            tensors = load_file(ckpt_dir / "resume" / "learner.safetensors")
        except (SafetensorError, OSError) as err:
            raise CheckpointError(f"{ckpt_dir / 'resume' / 'learner.safetensors'}: unreadable ({err})") from None
        meta = json.loads((ckpt_dir / "resume" / "learner.json").read_text())
        trainer = json.loads((ckpt_dir / "trainer_state.json").read_text())
        return int(trainer["iteration"]), LearnerState(int(meta.pop("version")), tensors, meta)

    def truncate_metrics(self, iterations: int) -> list[dict]:
        """Keep metrics rows of iterations < `iterations` (work after the checkpoint is redone)."""
        return _keep_jsonl(self.root / "metrics.jsonl", lambda r: r["iteration"] < iterations)


def _append_jsonl(path: Path, row: dict) -> None:
    with open(path, "a", encoding="utf-8") as f:
        f.write(json.dumps(_jsonable(row)) + "\n")
        f.flush()
        os.fsync(f.fileno())


def _read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def _keep_jsonl(path: Path, keep) -> list[dict]:
    """Rewrite a .jsonl file (atomically) with the rows `keep` accepts; returns them."""
    rows = [r for r in _read_jsonl(path) if keep(r)]
    _atomic_write(path, "".join(json.dumps(r) + "\n" for r in rows).encode())
    return rows


RUN_MARKERS = ("config.yaml", "metrics.jsonl")  # files every run folder of ours holds


def _check_replaceable(root: Path, output_dir: Path) -> None:
    """Refuse to delete a folder that is not a run folder directly inside output_dir."""
    real, parent = root.resolve(), output_dir.resolve()
    if real.parent != parent or root.is_symlink():
        raise RunDirError(f"run.overwrite: {root} is not a folder inside {output_dir}; nothing was deleted")
    if not any((real / m).is_file() for m in RUN_MARKERS):
        raise RunDirError(f"run.overwrite: {root} holds files but no {' or '.join(RUN_MARKERS)}: it does not look "
                          "like a run folder, so it is not deleted; pick another run.name or remove it yourself")


def _sha256(path: Path) -> str:
    import hashlib

    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _write_manifest(folder: Path) -> None:
    files = sorted(p for p in folder.rglob("*") if p.is_file())
    manifest = {str(p.relative_to(folder)): {"sha256": _sha256(p), "bytes": p.stat().st_size} for p in files}
    (folder / "manifest.json").write_text(json.dumps(manifest, indent=1))


def _fsync_tree(folder: Path) -> None:
    for p in folder.rglob("*"):
        if p.is_file():
            with open(p, "rb") as f:
                os.fsync(f.fileno())


def verify_checkpoint(folder: Path) -> None:
    """Raise CheckpointError naming the first missing, truncated or altered file."""
    mpath = folder / "manifest.json"
    if not mpath.is_file():
        raise CheckpointError(f"{mpath}: missing; {folder} is not a complete checkpoint")
    try:
        manifest = json.loads(mpath.read_text())
    except ValueError as err:
        raise CheckpointError(f"{mpath}: damaged ({err})") from None
    for rel, want in manifest.items():
        f = folder / rel
        if not f.is_file():
            raise CheckpointError(f"{f}: missing from checkpoint")
        if f.stat().st_size != want["bytes"] or _sha256(f) != want["sha256"]:
            raise CheckpointError(f"{f}: damaged (size or checksum differs from {mpath.name})")


def _atomic_write(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
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

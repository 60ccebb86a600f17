"""The config tree of `adascope-ray eval` (docs/evaluation.md): which checkpoints, on
which prompts, with which rewards (the training schema's reward components), sampled
how. Strict like the run's tree; `load_eval_config` names the file and the field of
any problem.
"""
from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator

from .config import CLIP_REWARDS, ModelConfig, RewardComponentConfig, _Strict, load_tree_as


class PromptSetConfig(_Strict):
    """Exactly one source: a list, a file, or a split of the shapes world."""
    prompts: list[str] = Field(default_factory=list, description="The prompts themselves.")
    file: str | None = Field(None, description="A .txt (one prompt a line) or .parquet (column 'prompt') file, e.g. Pick-a-Pic-style prompts.")
    world_split: Literal["validation", "test"] | None = Field(None, description="Shapes world captions of this split (adascope_ray/world/splits.py): 'test' for reporting, 'validation' for decisions.")
    num_prompts: int = Field(48, ge=1, le=233, description="world_split: how many captions; a file or list: the first this many (all when larger).")

    @model_validator(mode="after")
    def _one_source(self) -> "PromptSetConfig":
        given = [n for n, v in (("prompts", self.prompts), ("file", self.file), ("world_split", self.world_split)) if v]
        if len(given) != 1:
            raise ValueError(f"give exactly one of prompts.prompts, prompts.file, prompts.world_split (got {given or 'none'})")
        return self


class EvalSamplingConfig(_Strict):
    """How every checkpoint samples; recorded with the results."""
    num_steps: int = Field(16, ge=2, le=1000, description="Denoising steps K.")
    guidance_scale: float = Field(4.5, ge=1.0, le=30.0, description="Classifier-free guidance scale; 1 turns guidance off.")
    eta: float = Field(1.0, ge=0.0, le=1.0, description="DDIM η (or the flow SDE's noise level); 0 = the deterministic sampler (DDIM η = 0, or the flow ODE): then the image depends on the starting noise alone.")
    batch_size: int = Field(32, ge=1, le=4096, description="Images generated per forward batch.")
    torch_threads: int = Field(2, ge=1, le=256, description="CPU threads for torch.")


class DiversityConfig(_Strict):
    """Within-prompt diversity: mean pairwise distance of a prompt's images over its seeds and samples."""
    embedding: Literal["auto", "pixels", "clip"] = Field("auto", description="'clip': 1 − cosine of the image embeddings of the first CLIP-family reward (clip_score, pickscore, aesthetic); 'pixels': RMS distance of 16×16 area-averaged images in [0, 1] (weight-free); 'auto': clip when such a reward is configured, else pixels.")


class CheckpointEvalConfig(_Strict):
    name: str = Field("eval", min_length=1, max_length=200, pattern=r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$", description="Output folder name under output_dir.")
    output_dir: str = Field("runs/eval", description="Folder that holds evaluation folders.")
    overwrite: bool = Field(False, description="Replace an existing evaluation folder of the same name.")
    checkpoints: list[str] = Field(min_length=1, description="What to evaluate, in order; the first is the reference the others are paired against. 'base' (the model's own weights), a run folder (its newest checkpoint), or a checkpoint folder (e.g. RUN/checkpoints/best).")
    model: ModelConfig | None = Field(None, description="The base model; None = the model of the first run among checkpoints. Every run's model must be this one.")
    prompts: PromptSetConfig = Field(description="The prompt set.")
    samples_per_prompt: int = Field(1, ge=1, le=64, description="Samples of each prompt per noise seed.")
    seeds: list[int] = Field(default_factory=lambda: [0, 1, 2], min_length=1, description="Noise seeds: every checkpoint sees the same initial and per-step noise for a given seed, prompt and sample.")
    sampling: EvalSamplingConfig = Field(default_factory=EvalSamplingConfig, description="Sampling settings.")
    rewards: list[RewardComponentConfig] = Field(min_length=1, description="Reward components to score with (the training schema; weights make the 'reward' total). A component a run did not train on is marked out-of-domain for it.")
    diversity: DiversityConfig = Field(default_factory=DiversityConfig, description="Within-prompt diversity.")
    save_images: bool = Field(True, description="Write every image as a PNG (the per-sample JSONL names it).")
    grid_prompts: int = Field(6, ge=0, le=64, description="Prompts shown in grid.png (rows), each checkpoint's first seed's samples as columns.")

    @model_validator(mode="after")
    def _checks(self) -> "CheckpointEvalConfig":
        if len(set(self.seeds)) != len(self.seeds):
            raise ValueError(f"seeds repeat a seed: {self.seeds}")
        if any(s < 0 for s in self.seeds):
            raise ValueError("seeds must be >= 0")
        if self.model is None and self.checkpoints == ["base"] * len(self.checkpoints):
            raise ValueError("model: needed when no checkpoint is a run (only 'base' given)")
        if self.diversity.embedding == "clip" and not any(c.name in CLIP_REWARDS for c in self.rewards):
            raise ValueError("diversity.embedding 'clip' needs a clip_score, pickscore or aesthetic reward")
        return self


def load_eval_config(path: str | Path, overrides: list[str] | None = None) -> CheckpointEvalConfig:
    return load_tree_as(CheckpointEvalConfig, path, overrides)

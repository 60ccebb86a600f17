"""What `adascope-ray eval` evaluates: a name for each checkpoint spec, the model
config it was trained with, and loading its weights into a plain Sampler (no ray).

    base                  the model's own weights (no update)
    RUN_DIR               a run folder: its newest complete checkpoint
    RUN_DIR/checkpoints/step_0030, RUN_DIR/checkpoints/best   a checkpoint folder

Weights load from the exported files, the layout a plain diffusers pipeline loads
(pytorch_lora_weights.safetensors, or unet/ | transformer/ for full fine-tuning),
after every file is checked against the checkpoint's manifest.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path


class CheckpointSpecError(ValueError):
    """A checkpoint spec that names nothing usable; the message names the path."""


@dataclass(frozen=True)
class CheckpointRef:
    label: str                 # shown in tables: 'base', '<run>/step_0030', '<run>/best'
    folder: Path | None        # the checkpoint folder; None for base
    model_cfg: object          # config.ModelConfig the weights belong to
    trained_rewards: tuple[str, ...] = ()  # reward components the run trained on

    @property
    def kind(self) -> str:
        if self.folder is None:
            return "base"
        return json.loads((self.folder / "trainer_state.json").read_text()).get("kind", "lora")


def resolve(spec: str, base_model_cfg) -> CheckpointRef:
    """base_model_cfg: the evaluation's model (None = take the run's)."""
    from .config import ConfigError, load_config
    from .runio import RunDir

    if spec == "base":
        if base_model_cfg is None:
            raise CheckpointSpecError("checkpoint 'base': no model configured and no run to take it from")
        return CheckpointRef("base", None, base_model_cfg)
    path = Path(spec).expanduser()
    if (path / "config.yaml").is_file() and (path / "checkpoints").is_dir():   # a run folder
        run_root, found = path, RunDir(path).checkpoints()
        if not found:
            raise CheckpointSpecError(f"checkpoint {spec}: the run folder holds no complete checkpoint")
        folder = found[-1]
    elif (path / "trainer_state.json").is_file():                                # a checkpoint folder
        run_root, folder = path.parent.parent, path
        if not (run_root / "config.yaml").is_file():
            raise CheckpointSpecError(f"checkpoint {spec}: no run config at {run_root / 'config.yaml'} "
                                      "(its model and LoRA settings are needed to load it)")
    else:
        raise CheckpointSpecError(f"checkpoint {spec}: neither 'base', a run folder (config.yaml + checkpoints/) "
                                  "nor a checkpoint folder (trainer_state.json)")
    try:
        run_cfg = load_config(run_root / "config.yaml")
    except ConfigError as err:
        raise CheckpointSpecError(f"checkpoint {spec}: its run config is unreadable: {err}") from None
    if base_model_cfg is not None and run_cfg.model.path != base_model_cfg.path:
        raise CheckpointSpecError(f"checkpoint {spec} was trained from model {run_cfg.model.path!r}, "
                                  f"the evaluation's model is {base_model_cfg.path!r}")
    return CheckpointRef(f"{run_cfg.run.name}/{folder.name}", folder, run_cfg.model,
                         tuple(c.name for c in run_cfg.rewards.components))


def load_into(sampler, ref: CheckpointRef) -> None:
    """Replace the sampler's trainable weights by the checkpoint's."""
    import torch
    from safetensors.torch import load_file

    from .models.policy import denoiser_name
    from .runio import verify_checkpoint

    if ref.folder is None:
        return
    verify_checkpoint(ref.folder)
    denoiser, name = sampler.denoiser, denoiser_name(sampler.pipe)
    if ref.kind == "full":
        state = load_file(ref.folder / name / "diffusion_pytorch_model.safetensors")
        denoiser.load_state_dict({k: v.to(denoiser.dtype) for k, v in state.items()}, strict=True)
        return
    from peft.utils import set_peft_model_state_dict

    raw = load_file(ref.folder / "pytorch_lora_weights.safetensors")
    state = {k.removeprefix(f"{name}."): v for k, v in raw.items()}
    lora = [n for n, _ in denoiser.named_parameters() if "lora_" in n]
    if len(state) != len(lora):
        raise CheckpointSpecError(f"checkpoint {ref.folder}: {len(state)} LoRA tensors, the model under its run's "
                                  f"LoRA settings has {len(lora)}")
    with torch.no_grad():
        result = set_peft_model_state_dict(denoiser, state)
    unexpected = getattr(result, "unexpected_keys", [])
    if unexpected:
        raise CheckpointSpecError(f"checkpoint {ref.folder}: tensors the model does not have, e.g. {unexpected[0]}")

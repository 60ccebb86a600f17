"""The tiny model goes through the same loading path as a real checkpoint, and the
LoRA checkpoint loads into a plain diffusers pipeline."""
import json
from pathlib import Path

import torch
from diffusers import AutoencoderKL, DDIMScheduler, StableDiffusionPipeline, UNet2DConditionModel
from transformers import CLIPTextModel, CLIPTokenizer

from adascope_ray.learner import Learner
from adascope_ray.models.loader import load_pipeline, resolve_model_path
from adascope_ray.models.tiny import ensure_tiny_checkpoint
from adascope_ray.runio import RunDir


def test_tiny_is_saved_then_loaded_with_real_classes(tiny_cfg, model_cache):
    path = resolve_model_path(tiny_cfg.model)
    index = json.loads((path / "model_index.json").read_text())
    assert index["unet"] == ["diffusers", "UNet2DConditionModel"]
    mtime = (path / "model_index.json").stat().st_mtime
    assert ensure_tiny_checkpoint(model_cache, 0, 32) == path  # built once, then reused
    assert (path / "model_index.json").stat().st_mtime == mtime
    pipe = load_pipeline(tiny_cfg.model)
    assert isinstance(pipe.unet, UNet2DConditionModel) and isinstance(pipe.vae, AutoencoderKL)
    assert isinstance(pipe.text_encoder, CLIPTextModel) and isinstance(pipe.tokenizer, CLIPTokenizer)
    assert isinstance(pipe.scheduler, DDIMScheduler) and not pipe.scheduler.config.set_alpha_to_one


def test_tiny_build_is_deterministic(tmp_path, model_cache):
    from safetensors.torch import load_file

    a = load_file(ensure_tiny_checkpoint(model_cache, 0, 32) / "unet" / "diffusion_pytorch_model.safetensors")
    b = load_file(ensure_tiny_checkpoint(tmp_path, 0, 32) / "unet" / "diffusion_pytorch_model.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_missing_model_path_is_named(make_cfg, tmp_path):
    import pytest

    cfg = make_cfg(model={"path": str(tmp_path / "nowhere")})
    with pytest.raises(FileNotFoundError, match="nowhere"):
        resolve_model_path(cfg.model)


def test_lora_checkpoint_loads_with_load_lora_weights(make_cfg, tmp_path):
    cfg = make_cfg()
    learner = Learner(cfg.model, cfg.sampling, cfg.learner, cfg.window, cfg.advantage)
    with torch.no_grad():  # move the LoRA weights away from their zero init
        for n, p in learner.unet.named_parameters():
            if "lora_B" in n:
                p.normal_(0, 0.1)
    run = RunDir.create(str(tmp_path), "r", overwrite=False)
    ckpt_dir = run.save_checkpoint(3, learner.export(), {"iteration": 3})
    assert (ckpt_dir / "pytorch_lora_weights.safetensors").is_file()
    assert not any(p.name.startswith(".tmp") for p in ckpt_dir.parent.iterdir())

    pipe = StableDiffusionPipeline.from_pretrained(str(resolve_model_path(cfg.model)), local_files_only=True)
    x, emb = torch.randn(1, 4, 16, 16), torch.randn(1, 77, 32)
    with torch.no_grad():
        before = pipe.unet(x, 400, encoder_hidden_states=emb).sample
        pipe.load_lora_weights(str(ckpt_dir))
        after = pipe.unet(x, 400, encoder_hidden_states=emb).sample
        learner.unet.eval()
        want = learner.unet(x, 400, encoder_hidden_states=emb).sample
    assert not torch.allclose(before, want)
    torch.testing.assert_close(after, want, rtol=1e-4, atol=1e-5)


def test_full_finetune_checkpoint_loads_as_a_unet(make_cfg, tmp_path):
    cfg = make_cfg(model={"trainable": "full"})
    learner = Learner(cfg.model, cfg.sampling, cfg.learner, cfg.window, cfg.advantage)
    with torch.no_grad():
        learner.unet.conv_out.weight.mul_(1.5)  # differ from the base model
    ckpt = learner.export()
    assert ckpt.kind == "full"
    path = RunDir.create(str(tmp_path), "r", overwrite=False).save_checkpoint(1, ckpt, {"iteration": 1})
    unet = UNet2DConditionModel.from_pretrained(str(path / "unet"))
    x, emb = torch.randn(1, 4, 16, 16), torch.randn(1, 77, 32)
    learner.unet.eval()
    with torch.no_grad():
        torch.testing.assert_close(unet(x, 300, encoder_hidden_states=emb).sample,
                                   learner.unet(x, 300, encoder_hidden_states=emb).sample)


class _Payload:
    """A pickle that would create a file when unpickled."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def test_a_pickled_checkpoint_is_never_unpickled(tiny_cfg, tmp_path):
    import pickle
    import shutil

    import pytest

    model = tmp_path / "model"
    shutil.copytree(resolve_model_path(tiny_cfg.model), model)
    (model / "unet" / "diffusion_pytorch_model.safetensors").unlink()
    marker = tmp_path / "unpickled"
    with open(model / "unet" / "diffusion_pytorch_model.bin", "wb") as f:
        pickle.dump({"conv_in.weight": _Payload(marker)}, f)
    cfg = tiny_cfg.model.model_copy(update={"path": str(model)})
    # refused by weights-only loading: diffusers' OSError names the file it would not unpickle
    with pytest.raises(OSError, match=r"diffusion_pytorch_model\.bin"):
        load_pipeline(cfg)
    assert not marker.exists()  # the payload never ran


def test_the_shapes_configs_lora_on_convolutions_loads_whole_in_plain_diffusers(make_cfg, tmp_path):
    """configs/tiny.yaml puts LoRA on convolutions, projections and the time embedding
    too: every one of those adapters must reach a plain pipeline's UNet, or what a user
    loads is not what was trained."""
    import yaml

    targets = yaml.safe_load((Path(__file__).parents[2] / "configs" / "tiny.yaml").read_text())["model"]["lora_targets"]
    cfg = make_cfg(model={"lora_targets": targets, "lora_rank": 8, "lora_alpha": 8})
    learner = Learner(cfg.model, cfg.sampling, cfg.learner, cfg.window, cfg.advantage)
    with torch.no_grad():
        for n, p in learner.unet.named_parameters():
            if "lora_B" in n:
                p.normal_(0, 0.1)
    kinds = {n.split(".lora_B")[0].rsplit(".", 1)[-1] for n, _ in learner.unet.named_parameters() if "lora_B" in n}
    assert {"conv1", "conv2", "conv_in", "conv_out", "time_emb_proj"} <= kinds  # the adapters under test exist
    ckpt_dir = RunDir.create(str(tmp_path), "r", overwrite=False).save_checkpoint(1, learner.export(), {"iteration": 1})
    pipe = StableDiffusionPipeline.from_pretrained(str(resolve_model_path(cfg.model)), local_files_only=True)
    pipe.load_lora_weights(str(ckpt_dir))
    x, emb = torch.randn(2, 4, 16, 16), torch.randn(2, 77, 32)
    with torch.no_grad():
        got = pipe.unet(x, 400, encoder_hidden_states=emb).sample
        learner.unet.eval()
        want = learner.unet(x, 400, encoder_hidden_states=emb).sample
    torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-5)

"""Learner state through a checkpoint folder: an exact continuation, and damage
detected (tiny model, no Ray)."""
import pytest
import torch

from adascope_ray.learner import Learner
from adascope_ray.rewards import build_scorer
from adascope_ray.rollout import Sampler
from adascope_ray.data import PromptSchedule
from adascope_ray.runio import CheckpointError, RunDir
from adascope_ray.types import RewardResult, ScoredRollout


def _step(cfg, learner, sampler, it):
    sampler.set_weights(learner.publish())
    batch = PromptSchedule(cfg.data.prompts, 2, cfg.data.group_size, 0).batches(it, 1, sampler.version)[0]
    rollout = sampler.sample(batch)
    r = build_scorer("jpeg_compressibility")(rollout.images, rollout.prompts)
    return learner.update(it, [ScoredRollout(rollout, RewardResult(r, {"jpeg_compressibility": r}))])


def _trainable(learner):
    return {n: p.detach().clone() for n, p in learner.unet.named_parameters() if p.requires_grad}


def test_three_updates_equal_one_then_checkpoint_resume_then_two(make_cfg, tmp_path):
    # tracker advantages and a random window: every piece of learner state is exercised
    cfg = make_cfg(advantage={"mode": "tracker", "tracker_min_count": 2},
                   window={"strategy": "random_window", "random_window": {"size": 2, "start_range": [0, 2]}})
    straight, sampler = Learner(cfg.model, cfg.sampling, cfg.learner, cfg.window, cfg.advantage), \
        Sampler(cfg.model, cfg.sampling, cfg.sampler)
    ref = [_step(cfg, straight, sampler, it) for it in range(3)]

    first = Learner(cfg.model, cfg.sampling, cfg.learner, cfg.window, cfg.advantage)
    sampler = Sampler(cfg.model, cfg.sampling, cfg.sampler)
    got = [_step(cfg, first, sampler, 0)]
    run = RunDir.create(str(tmp_path), "r", overwrite=False)
    ckpt = run.save_checkpoint(1, first.export(), {"iteration": 1}, first.state())
    del first

    iteration, state = run.load_resume(ckpt)
    assert iteration == 1 and state.version == 1
    resumed = Learner(cfg.model, cfg.sampling, cfg.learner, cfg.window, cfg.advantage)
    resumed.load_state(state)
    sampler = Sampler(cfg.model, cfg.sampling, cfg.sampler)  # a fresh sampler: weights come from the learner
    got += [_step(cfg, resumed, sampler, it) for it in (1, 2)]

    for a, b in zip(ref, got):  # bit-identical on CPU
        assert (a.reward_mean, a.loss, a.grad_norm, a.window_hist) == (b.reward_mean, b.loss, b.grad_norm, b.window_hist)
    want, have = _trainable(straight), _trainable(resumed)
    assert want.keys() == have.keys() and all(torch.equal(want[n], have[n]) for n in want)
    assert resumed.version == straight.version == 3


def test_damaged_or_partial_checkpoints_are_named(make_cfg, tmp_path):
    cfg = make_cfg()
    learner = Learner(cfg.model, cfg.sampling, cfg.learner, cfg.window, cfg.advantage)
    run = RunDir.create(str(tmp_path), "r", overwrite=False)
    for step in (1, 2, 3, 4):
        run.save_checkpoint(step, learner.export(), {"iteration": step}, learner.state())
        run.prune_checkpoints(keep=2)
    assert [p.name for p in run.checkpoints()] == ["step_0003", "step_0004"]

    ckpt = run.latest_resumable()
    blob = ckpt / "resume" / "learner.safetensors"
    data = bytearray(blob.read_bytes())
    data[len(data) // 2] ^= 0xFF  # one flipped byte
    blob.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match=r"learner\.safetensors: damaged"):
        run.load_resume(ckpt)
    (ckpt / "manifest.json").unlink()  # as if the writer died before finishing
    with pytest.raises(CheckpointError, match="manifest.json: missing"):
        run.load_resume(ckpt)
    # an interrupted write leaves only a .tmp-* folder: it is not a checkpoint, and it is cleaned up
    (run.root / "checkpoints" / ".tmp-step_0005-x").mkdir()
    assert [p.name for p in run.checkpoints()] == ["step_0003", "step_0004"]
    run.prune_checkpoints(keep=2)
    assert not list((run.root / "checkpoints").glob(".tmp-*"))

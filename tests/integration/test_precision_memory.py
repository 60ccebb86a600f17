"""Mixed precision and gradient checkpointing on the tiny model (no Ray)."""
import numpy as np
import torch

from adascope_ray.learner import Learner, collate

from .conftest import pair_and_rollout


def test_bfloat16_model_trains_float32_adapters(make_cfg):
    cfg = make_cfg(model={"dtype": "bfloat16"}, window={"strategy": "full"})
    learner, sampler, s = pair_and_rollout(cfg)
    trained = {n: p for n, p in learner.unet.named_parameters() if p.requires_grad}
    frozen = [p for p in learner.unet.parameters() if not p.requires_grad]
    assert trained and all(p.dtype == torch.float32 for p in trained.values())
    assert frozen and all(p.dtype == torch.bfloat16 for p in frozen)
    assert sampler.pipe.vae.dtype == torch.bfloat16 and np.isfinite(s.rollout.log_probs).all()
    # the learner's bf16 forward reproduces the sampler's log-probs (same inputs, same dtype)
    batch = collate([s], learner.device, learner.policy.schedule)
    pairs = np.argwhere(np.ones(batch.log_probs.shape, bool))
    learner.unet.eval()
    with torch.no_grad():
        got = learner.log_probs(batch, pairs)
    torch.testing.assert_close(got, batch.log_probs.reshape(-1), atol=1e-3, rtol=1e-3)
    learner.unet.train()
    before = {n: p.detach().clone() for n, p in trained.items()}
    stats = learner.update(0, [s])
    assert np.isfinite(stats.loss) and stats.skipped_steps == 0
    assert any(not torch.equal(p, before[n]) for n, p in trained.items())


def test_gradient_checkpointing_recomputes_activations_not_the_update(make_cfg):
    """Checkpointing trades memory for compute: the blocks' activations are not kept
    but recomputed in the backward pass (each checkpointed block runs its forward
    again), and the update is the same."""
    plain_cfg = make_cfg(window={"strategy": "full"})
    ckpt_cfg = make_cfg(window={"strategy": "full"}, model={"gradient_checkpointing": True})
    plain, _, s = pair_and_rollout(plain_cfg)
    ckpt = Learner(ckpt_cfg.model, ckpt_cfg.sampling, ckpt_cfg.learner, ckpt_cfg.window, ckpt_cfg.advantage)
    assert ckpt.unet.is_gradient_checkpointing and not plain.unet.is_gradient_checkpointing
    calls = {"plain": 0, "ckpt": 0}
    for name, learner in (("plain", plain), ("ckpt", ckpt)):
        block = learner.unet.up_blocks[-1].resnets[-1]  # after trained layers: the backward runs through it
        block.register_forward_pre_hook(lambda *_, name=name: calls.__setitem__(name, calls[name] + 1))
    a, b = plain.update(0, [s]), ckpt.update(0, [s])
    assert calls["plain"] > 0 and calls["ckpt"] == 2 * calls["plain"]  # the forward again inside backward
    assert abs(a.loss - b.loss) < 1e-6 and abs(a.grad_norm - b.grad_norm) < 1e-5 * max(1.0, a.grad_norm)
    pa = {n: p for n, p in plain.unet.named_parameters() if p.requires_grad}
    pb = {n: p for n, p in ckpt.unet.named_parameters() if p.requires_grad}
    assert all(torch.allclose(pa[n], pb[n], atol=1e-6) for n in pa)

"""window.semantic.source = embedding: the sampler's C_k is the cosine of a CLIP-family
reward's image embeddings of decode(x̂0_k) and of the final image, probed every few
steps, recomputed here from the sampler's own per-step decoded predictions and the
reward's embedder called directly."""
import numpy as np
import pytest

from adascope_ray.config import SemanticConfig
from adascope_ray.data import PromptSchedule
from adascope_ray.models.tiny_clip import build_clip_folder
from adascope_ray.rewards import build_scorer
from adascope_ray.rewards.clip_family import image_embedder
from adascope_ray.rollout import Sampler


def test_embedding_c_k_is_the_probed_cosine_and_its_passes_are_counted(make_cfg, tmp_path):
    cfg = make_cfg(sampling={"num_steps": 5, "guidance_scale": 3.0})
    clip = str(build_clip_folder(tmp_path / "clip"))
    scorer = build_scorer("pickscore", path=clip)
    embed = image_embedder("pickscore", scorer)
    sem = SemanticConfig(source="embedding", reward="pickscore", probe_every=2)  # probes 0, 2, 4
    sampler = Sampler(cfg.model, cfg.sampling, cfg.sampler, semantic=sem, embed=embed)
    sampler.version = 0  # the base weights: nothing published is needed to sample them
    batch = PromptSchedule(cfg.data.prompts, 2, 2, 0).batches(0, 1, 0)[0]
    rollout = sampler.sample(batch)
    b, k = rollout.batch_size, 5
    assert rollout.counters == {"probe_decodes": b * 3, "probe_embeds": b * 4}

    # the same draws through trace(): every step's decode(x̂0_k) and the final images
    traced = sampler.trace(list(batch.prompts), batch.seed * 100_003)
    assert np.array_equal(traced["images"], rollout.images)
    final = embed(traced["images"])                                              # (b, D)
    want = np.zeros((b, k))
    for step in range(k):
        probe = (step // 2) * 2                                                  # the last probe <= step
        e = embed(traced["step_images"][:, probe])
        want[:, step] = (e * final).sum(1) / np.linalg.norm(e, axis=1) / np.linalg.norm(final, axis=1)
    np.testing.assert_allclose(rollout.signals.semantic, want, atol=2e-3)
    assert not np.allclose(want[:, 0], want[:, -1])  # the probes differ: the hold is not a constant

    # an evaluation (η = 0) trains nothing: no probes, the latent C_k
    evaluated = sampler.sample(batch, deterministic=True)
    assert evaluated.counters == {}


def test_an_embedding_source_without_an_embedder_is_refused(tiny_cfg):
    with pytest.raises(ValueError, match="no image embedder was given for reward 'pickscore'"):
        Sampler(tiny_cfg.model, tiny_cfg.sampling, tiny_cfg.sampler,
                semantic=SemanticConfig(source="embedding", reward="pickscore"))


def test_a_reward_without_an_image_embedder_is_named():
    with pytest.raises(ValueError, match="reward 'jpeg_compressibility' has no CLIP image embedder"):
        image_embedder("jpeg_compressibility", build_scorer("jpeg_compressibility"))

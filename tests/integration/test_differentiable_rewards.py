"""The differentiable CLIP-family rewards against the scorers' own numpy path (the
processors on uint8 images), and their gradient against finite differences."""
import numpy as np
import pytest
import torch

from adascope_ray.config import RewardComponentConfig
from adascope_ray.models.tiny_clip import build_aesthetic_head, build_clip_folder, build_hps_checkpoint
from adascope_ray.rewards import build_scorer
from adascope_ray.rewards.differentiable import differentiable_reward

PROMPTS = ["a red circle on the left", "two blue squares, white background"]


@pytest.fixture(scope="module")
def components(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("diff_rewards")
    clip = build_clip_folder(tmp / "clip")
    from transformers import CLIPConfig

    head = build_aesthetic_head(tmp / "head.safetensors", dim=CLIPConfig.from_pretrained(str(clip)).projection_dim)
    hps_cfg, hps = build_hps_checkpoint(tmp / "hps")
    return [RewardComponentConfig(name="pickscore", path=str(clip), device="cpu"),
            RewardComponentConfig(name="clip_score", path=str(clip), device="cpu"),
            RewardComponentConfig(name="aesthetic", path=str(clip), head_path=str(head), device="cpu"),
            RewardComponentConfig(name="hpsv2", path=str(hps), open_clip_config=str(hps_cfg), device="cpu")]


def images(h: int, w: int) -> np.ndarray:
    """Two smooth scenes with a sharp shape (so resize and crop matter), (2, h, w, 3) uint8."""
    y, x = np.mgrid[0:h, 0:w]
    a = np.stack([x * 255 // w, y * 255 // h, (x + y) * 255 // (h + w)], -1).astype(np.uint8)
    b = a[::-1, ::-1].copy()
    a[h // 4 : h // 2, w // 4 : w // 2] = (250, 30, 30)
    b[h // 2 :, : w // 3] = (20, 40, 230)
    return np.stack([a, b])


def as_tensor(ims: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(ims).permute(0, 3, 1, 2).float() / 255.0


@pytest.mark.parametrize("h, w", [(32, 32), (48, 40), (40, 64)])
def test_the_torch_path_scores_as_the_numpy_path(components, h, w):
    ims = images(h, w)
    for c in components:
        want = build_scorer(c.name, **c.scorer_options())(ims, PROMPTS)
        with torch.no_grad():
            got = differentiable_reward(c)(as_tensor(ims), PROMPTS).numpy()
        # the numpy path rounds the resized image to uint8 (±0.5/255 a pixel): a small tolerance
        np.testing.assert_allclose(got, want, rtol=2e-3, atol=2e-3 * max(1.0, float(np.abs(want).max())), err_msg=c.name)


def test_the_gradient_matches_finite_differences(components):
    x0 = as_tensor(images(48, 40)).double().float()
    v = torch.randn(x0.shape, generator=torch.Generator().manual_seed(0))
    v = v / v.norm()
    for c in components:
        reward = differentiable_reward(c)
        x = x0.clone().requires_grad_(True)
        r = reward(x, PROMPTS)
        r.sum().backward()
        assert torch.isfinite(x.grad).all(), c.name
        # clip_score is 100 · max(cos, 0): no gradient where the cosine is negative
        assert (x.grad.abs().sum() > 0) == bool((r > 0).any() or c.name != "clip_score"), c.name
        eps = 1e-2
        with torch.no_grad():
            fd = (reward(x0 + eps * v, PROMPTS).sum() - reward(x0 - eps * v, PROMPTS).sum()) / (2 * eps)
        analytic = (x.grad * v).sum()
        assert float(fd) == pytest.approx(float(analytic), rel=0.05, abs=1e-4 * max(1.0, abs(float(analytic)))), c.name


def test_a_reward_without_a_gradient_is_refused_by_name():
    with pytest.raises(ValueError, match="'jpeg_compressibility' has no gradient"):
        differentiable_reward(RewardComponentConfig(name="jpeg_compressibility"))
    with pytest.raises(ValueError, match="'ocr' has no gradient"):
        differentiable_reward(RewardComponentConfig(name="ocr"))

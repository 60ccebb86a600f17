"""scene_check's smooth form (rewards/scene_soft.py) on images drawn here with numpy,
on the world's own renders, and its gradient against finite differences."""
import dataclasses

import numpy as np
import torch

from adascope_ray.rewards.scene_soft import SoftSceneCheck
from adascope_ray.world.scenes import BACKGROUNDS, OBJECT_COLORS, caption, dataset

S = SoftSceneCheck()


def canvas(bg="gray"):
    return np.broadcast_to(np.array(BACKGROUNDS[bg], np.uint8), (32, 32, 3)).copy()


def test_an_empty_canvas_scores_only_its_background():
    # no red anywhere: colour 0, n̂ = 0 so count 2^(−√(1 + 0.01)), background exactly gray: 1
    got = S.numpy(canvas()[None], ["a red circle, gray background"])[0]
    assert abs(got - (0 + 2 ** -np.sqrt(1.01) + 1) / 3) < 1e-3


def test_a_red_block_on_the_left_by_hand():
    img = canvas()
    img[10:17, 5:12] = OBJECT_COLORS["red"]          # 7 × 7 = 49 px, columns 5..11
    a1 = (2 * 0.85 * 4) ** 2                          # the world's square at 32 px: side 1.7 r, r = 4
    u = (np.arange(5, 12) + 0.5) / 32
    position = np.mean(1 / (1 + np.exp(-(0.5 - u) / 0.025)))
    want = [min(1, 49 / a1), 2 ** -np.sqrt((49 / a1 - 1) ** 2 + 0.01), position, 1.0]
    got = S.numpy(img[None], ["a red square on the left, gray background"])[0]
    assert abs(got - np.mean(want)) < 2e-3
    # the same block named on the right: its position check goes to ~0
    right = S.numpy(img[None], ["a red square on the right, gray background"])[0]
    assert abs(right - np.mean(want[:2] + [1 - position, 1.0])) < 2e-3


def test_renders_score_their_caption_above_a_caption_changed_in_one_claim():
    images, _, scenes = dataset(60, seed=11)
    other = {"left": "right", "right": "left", "top": "bottom", "bottom": "top"}
    for im, sc in zip(images, scenes):
        alts = [dataclasses.replace(sc, color=next(c for c in OBJECT_COLORS if c != sc.color)),
                dataclasses.replace(sc, count=sc.count % 3 + 1),
                dataclasses.replace(sc, background=next(b for b in BACKGROUNDS if b != sc.background))]
        if sc.position is not None:
            alts.append(dataclasses.replace(sc, position=other[sc.position]))
        s = S.numpy(np.repeat(im[None], 1 + len(alts), 0), [caption(sc)] + [caption(a) for a in alts])
        assert s[0] > 0.85 and (s[0] > s[1:]).all(), (caption(sc), s)


def test_gradient_matches_finite_differences():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(2, 3, 8, 8, generator=g, dtype=torch.float64)
    x[0, :, 2:5, 1:4] = torch.tensor([220, 40, 40], dtype=torch.float64).view(3, 1, 1) / 255 + 0.02
    prompts = ["a red square on the left, white background", "two blue circles at the top, black background"]
    x.requires_grad_(True)
    assert torch.autograd.gradcheck(lambda t: S(t, prompts), (x,), eps=1e-6, atol=1e-5)


def test_smoothness_settings_by_hand():
    # one pixel 60 RGB units from red along the red axis, T = 40, W = 20:
    # m_red = softmax_j(−d_j² / 2T²)_red · σ((R − d_red) / W), d_j to every palette colour
    from adascope_ray.rewards.scene_check import _COLS, COLOR_RADIUS

    red = np.asarray(OBJECT_COLORS["red"], np.float64)
    p = red - np.array([60.0, 0, 0])
    d = np.linalg.norm(np.asarray(_COLS, np.float64) - p, axis=1)
    t, w = 40.0, 20.0
    e = np.exp(-(d ** 2) / (2 * t * t) + (d ** 2).min() / (2 * t * t))
    c = list(OBJECT_COLORS).index("red")
    want = e[c] / e.sum() / (1 + np.exp(-(COLOR_RADIUS - d[c]) / w))
    x = torch.as_tensor(p / 255.0, dtype=torch.float64).view(1, 3, 1, 1)
    got = SoftSceneCheck(t, w).memberships(x)[0, c, 0, 0].item()
    assert abs(got - want) < 1e-9
    # the default is sharper: the same pixel is assigned to red with less doubt
    sharp = SoftSceneCheck().memberships(x)[0, c, 0, 0].item()
    assert sharp > got


def test_soft_is_refused_for_other_rewards_by_name():
    import pytest
    from pydantic import ValidationError

    from adascope_ray.config import RewardComponentConfig
    from adascope_ray.rewards.differentiable import differentiable_reward

    with pytest.raises(ValidationError, match="soft applies to 'scene_check' only"):
        RewardComponentConfig(name="jpeg_compressibility", soft={"temperature": 40})
    with pytest.raises(ValidationError, match="edge"):
        RewardComponentConfig(name="scene_check", soft={"edge": 0})
    built = differentiable_reward(RewardComponentConfig(name="scene_check", soft={"temperature": 40, "edge": 20}))
    assert (built.temperature, built.edge) == (40.0, 20.0)

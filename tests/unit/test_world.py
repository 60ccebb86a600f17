"""The shapes world's generator: deterministic, and every caption says what is drawn."""
import numpy as np

from adascope_ray.rewards.scene_check import parse_prompt
from adascope_ray.world.scenes import SHAPES, caption, dataset, region, sample_scene


def test_same_seed_same_dataset_other_seed_other_dataset():
    a, ca, _ = dataset(20, seed=3)
    b, cb, _ = dataset(20, seed=3)
    c, cc, _ = dataset(20, seed=4)
    assert np.array_equal(a, b) and ca == cb
    assert not np.array_equal(a, c) and ca != cc
    assert a.shape == (20, 32, 32, 3) and a.dtype == np.uint8


def test_captions_state_the_scene_and_centres_keep_to_their_region():
    rng = np.random.default_rng(0)
    for _ in range(500):
        s = sample_scene(rng)
        claim = parse_prompt(caption(s))
        assert (claim.count, claim.color, claim.shape, claim.position, claim.background) == (
            s.count, s.color, s.shape, s.position, s.background)
        assert len(s.centres) == s.count and s.shape in SHAPES
        x0, x1, y0, y1 = region(s.position, 1 / 8 + 1 / 32)
        assert all(x0 <= x <= x1 and y0 <= y <= y1 for x, y in s.centres)
        # bounding boxes (side 1/4) at least 1/32 apart: no two shapes touch
        for i, (xa, ya) in enumerate(s.centres):
            for xb, yb in s.centres[i + 1:]:
                assert max(abs(xa - xb), abs(ya - yb)) >= 1 / 4 + 1 / 32


def test_caption_wording():
    rng = np.random.default_rng(1)
    caps = {caption(sample_scene(rng)) for _ in range(300)}
    assert any(c.startswith("two ") and "s on the left," in c for c in caps)
    assert any(c.startswith("a ") and "striped" in c for c in caps)
    assert all(c.endswith(" background") for c in caps)

"""The shapes world's caption splits never overlap, whatever the seed."""
import pytest

from adascope_ray.world.scenes import dataset
from adascope_ray.world.splits import SPLITS, all_captions, caption_split, split_captions


def test_every_caption_is_in_exactly_one_split_and_the_shares_are_as_designed():
    caps = all_captions()
    assert len(caps) == len(set(caps)) == 3 * 4 * 3 * 5 * 3 * 2  # count, colour, shape, position, background, stripes
    share = {s: sum(caption_split(c) == s for c in caps) / len(caps) for s in SPLITS}
    assert share["train"] == pytest.approx(0.6, abs=0.05) and share["test"] == pytest.approx(0.2, abs=0.05)
    # the world's own captions are all enumerated (the dataset can write nothing else)
    assert set(dataset(200, seed=3, size=8)[1]) <= set(caps)


@pytest.mark.parametrize("seeds", [(0, 0, 0), (0, 1, 2), (7, 7, 8)])
def test_splits_drawn_from_any_seeds_are_disjoint(seeds):
    got = {s: split_captions(s, 40, seed) for s, seed in zip(SPLITS, seeds)}
    for s, caps in got.items():
        assert len(caps) == len(set(caps)) == 40 and all(caption_split(c) == s for c in caps)
    assert not set(got["train"]) & set(got["validation"])
    assert not set(got["train"]) & set(got["test"])
    assert not set(got["validation"]) & set(got["test"])


def test_a_split_is_reproducible_and_bounded():
    assert split_captions("test", 10, seed=5) == split_captions("test", 10, seed=5)
    assert split_captions("test", 10, seed=5) != split_captions("test", 10, seed=6)
    with pytest.raises(ValueError, match="distinct test captions"):
        split_captions("test", 5000)
    with pytest.raises(ValueError, match="split must be one of"):
        split_captions("holdout", 3)

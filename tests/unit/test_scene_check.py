"""The shapes world's verifiable reward on images drawn here with numpy (independent of
the world's PIL renderer), and on the world's own renders."""
import numpy as np
import pytest

from adascope_ray.rewards.scene_check import Claim, SceneCheck, parse_prompt, shape_of
from adascope_ray.world.scenes import BACKGROUNDS, OBJECT_COLORS, dataset

YY, XX = np.mgrid[0:32, 0:32]


def canvas(bg="gray"):
    return np.broadcast_to(np.array(BACKGROUNDS[bg], np.uint8), (32, 32, 3)).copy()


def paint(img, mask, color):
    img[mask] = OBJECT_COLORS[color]
    return img


SQUARE = lambda cy, cx: (abs(YY - cy) <= 3) & (abs(XX - cx) <= 3)             # noqa: E731  7x7
DISC = lambda cy, cx: (YY - cy) ** 2 + (XX - cx) ** 2 <= 16                    # noqa: E731  r = 4
# apex up at (cy - 4, cx), base row cy + 3: |x - cx| <= (y - (cy - 4)) / 2
TRIANGLE = lambda cy, cx: (YY >= cy - 4) & (YY <= cy + 3) & (2 * abs(XX - cx) <= YY - (cy - 4))  # noqa: E731


@pytest.fixture
def two_red_squares_left():
    img = canvas()
    return paint(paint(img, SQUARE(8, 8), "red"), SQUARE(22, 9), "red")


@pytest.mark.parametrize("prompt,checks", [
    # color, count, shape, position, background; score = their mean
    ("two red squares on the left, gray background", [1, 1, 1, 1, 1]),
    ("three red squares on the left, gray background", [1, 0, 1, 1, 1]),
    ("two red circles on the left, gray background", [1, 1, 0, 1, 1]),
    ("two red squares on the right, gray background", [1, 1, 1, 0, 1]),
    ("two blue squares on the left, gray background", [0, 0, 0, 0, 1]),
    ("two red squares, white background", [1, 1, 1, None, 0]),  # no position named: not checked
])
def test_each_check_against_a_hand_drawn_scene(two_red_squares_left, prompt, checks):
    score, parts = SceneCheck().breakdown(two_red_squares_left[None], [prompt])
    want = [c for c in checks if c is not None]
    assert score[0] == pytest.approx(np.mean(want))
    got = [None if np.isnan(parts[k][0]) else float(parts[k][0]) for k in ("color", "count", "shape", "position", "background")]
    assert got == checks


@pytest.mark.parametrize("prompt,want", [
    # the hand-worked checks above, multiplied: one failed check takes the whole score
    ("two red squares on the left, gray background", 1.0),
    ("three red squares on the left, gray background", 0.0),
    ("two red squares on the right, gray background", 0.0),
    ("two red squares, white background", 0.0),
])
def test_product_of_the_checks(two_red_squares_left, prompt, want):
    score, parts = SceneCheck(aggregate="product").breakdown(two_red_squares_left[None], [prompt])
    assert score[0] == want
    mean_score, mean_parts = SceneCheck().breakdown(two_red_squares_left[None], [prompt])
    assert {k: list(v) for k, v in parts.items() if not np.isnan(v[0])} == \
        {k: list(v) for k, v in mean_parts.items() if not np.isnan(v[0])}  # the breakdown does not change


def test_product_of_graded_checks_is_their_product(two_red_squares_left):
    # graded: a third square drawn as a disc gives a fractional shape check (2 of 3 blobs)
    img = paint(two_red_squares_left.copy(), DISC(15, 24), "red")
    prompt = "three red squares, gray background"
    _, parts = SceneCheck(graded=True).breakdown(img[None], [prompt])
    checks = [float(v[0]) for v in parts.values() if not np.isnan(v[0])]
    assert 0 < min(checks) < 1                                                 # something to multiply
    score, _ = SceneCheck(graded=True, aggregate="product").breakdown(img[None], [prompt])
    assert score[0] == pytest.approx(float(np.prod(checks)), rel=1e-6)
    with pytest.raises(ValueError, match="aggregate must be 'mean' or 'product'"):
        SceneCheck(aggregate="min")


def test_shapes_from_their_pixels():
    for mask, name in ((SQUARE(15, 15), "square"), (DISC(15, 15), "circle"), (TRIANGLE(15, 15), "triangle")):
        assert shape_of(np.argwhere(mask)) == name
    # square: fills its 7x7 box (49/49 > 0.84). disc: 49 pixels in its 9x9 box (0.60),
    # as many above its middle row as below. triangle: rows of 1, 1, 3, 3 | 5, 5, 7, 7
    # pixels, 8 above the middle against 24 below (1/3 < 0.7)
    assert np.argwhere(DISC(15, 15)).shape[0] == 49
    assert [int(r.sum()) for r in TRIANGLE(15, 15)[11:19]] == [1, 1, 3, 3, 5, 5, 7, 7]


def test_one_blob_per_object_and_specks_ignored():
    img = paint(paint(canvas("black"), DISC(8, 24), "yellow"), TRIANGLE(24, 24), "yellow")
    img[2, 2] = OBJECT_COLORS["yellow"]  # a 1-pixel speck is not an object
    score, parts = SceneCheck().breakdown(img[None], ["two yellow circles on the right, black background"])
    # two blobs on the right; one is a disc, one a triangle -> shape 1/2
    assert [float(parts[k][0]) for k in ("color", "count", "shape", "position", "background")] == [1, 1, 0.5, 1, 1]
    assert score[0] == pytest.approx(4.5 / 5)


def test_prompt_parsing():
    assert parse_prompt("a blue triangle at the top, striped white background") == Claim(1, "blue", "triangle", "top", "white")
    assert parse_prompt("three green circles, black background") == Claim(3, "green", "circle", None, "black")
    assert parse_prompt("a photo of a cat") is None
    with pytest.raises(ValueError, match="not a shapes-world prompt"):
        SceneCheck()(canvas()[None], ["a photo of a cat"])


def test_the_worlds_own_renders_pass_and_swapped_captions_fail():
    """Ground truth from the renderer scores near 1 (measured: 0.999 at 32 px, 1.0 at
    64 px over 1000 scenes); the same images under each other's captions score low."""
    images, captions, _ = dataset(300, seed=11, size=64)
    assert SceneCheck()(images, captions).mean() > 0.99
    assert SceneCheck()(images, captions[1:] + captions[:1]).mean() < 0.4


# partial credit on the same hand-drawn scene: two 7x7 red squares (49 px each) with
# centres (y, x) = (8, 8) and (22, 9), i.e. x = 8/32 and 9/32, on gray (128, 128, 128).
# Expected areas at 32 px (r = 4): square (1.7 r)^2 = 46.24, disc pi r^2 = 50.27.
# Each square: taper 1 (as many pixels above its middle row as below), fill 1, so
#   p(triangle) = s((0.7 - 1) / 0.03) = s(-10) = 4.54e-5
#   p(square)   = (1 - 4.54e-5) s((1 - 0.84) / 0.03) = s(5.333) = 0.99519
#   p(circle)   = 1 - 4.54e-5 - 0.99519 = 0.00477
# Position "left": s((0.5 - 8/32) / 0.025) = s(10) = 0.99995, s((0.5 - 9/32) / 0.025) = s(8.75) = 0.99984.
# Background white: |(128,)*3 - (235,)*3| = 107 sqrt 3 = 185.33 against black to white
# 215 sqrt 3 = 372.39: 1 - 0.49768 = 0.50232.
@pytest.mark.parametrize("prompt,checks", [
    ("two red squares on the left, gray background", [1.0, 1.0, 0.99519, 0.99990, 1.0]),
    ("three red squares on the left, gray background", [98 / (3 * 46.24), 0.5, 0.99519, 0.99990, 1.0]),
    ("two red circles on the right, gray background", [98 / (2 * 50.27), 1.0, 0.00477, 1.0 - 0.99990, 1.0]),
    ("a red square, white background", [1.0, 0.5, 0.99519, None, 0.50232]),
    ("two blue squares on the left, gray background", [0.0, 0.25, 0.0, 0.0, 1.0]),
])
def test_partial_credit_against_hand_worked_values(two_red_squares_left, prompt, checks):
    score, parts = SceneCheck(graded=True).breakdown(two_red_squares_left[None], [prompt])
    got = [None if np.isnan(parts[k][0]) else float(parts[k][0]) for k in ("color", "count", "shape", "position", "background")]
    assert got == [None if c is None else pytest.approx(c, abs=2e-4) for c in checks]
    assert score[0] == pytest.approx(np.mean([c for c in checks if c is not None]), abs=2e-4)


def test_partial_credit_ranks_nearer_misses_higher():
    """One white-background prompt: a light gray (175) still nearest gray fails the
    background check as mid-gray does, but earns more partial credit."""
    prompt = ["a red circle, white background"]
    mid, light = canvas("gray"), np.full((32, 32, 3), 175, np.uint8)
    for img in (mid, light):
        paint(img, DISC(15, 15), "red")
    binary = [SceneCheck()(im[None], prompt)[0] for im in (mid, light)]
    graded = [SceneCheck(graded=True).breakdown(im[None], prompt)[1]["background"][0] for im in (mid, light)]
    assert binary[0] == binary[1] == pytest.approx(0.75)  # colour, count, shape pass; background fails
    # (235 - 175) sqrt 3 = 103.92 -> 1 - 103.92 / 372.39 = 0.72094; mid-gray 0.50232
    assert graded == [pytest.approx(0.50232, abs=1e-4), pytest.approx(0.72094, abs=1e-4)]


def test_combined_reward_scores_the_evaluation_form_when_asked():
    """In process as on Serve: a run trained on partial credit and the product is
    evaluated pass / fail by the mean, each form against SceneCheck run directly."""
    from adascope_ray.config import RewardComponentConfig
    from adascope_ray.rewards.combine import CombinedReward

    images, captions, _ = dataset(6, seed=3, size=32)
    prompts = captions[1:] + captions[:1]  # each image under another caption: checks fail in part
    comps = [RewardComponentConfig(name="scene_check", partial_credit=True, aggregate="product")]
    trained = SceneCheck(graded=True, aggregate="product")(images, prompts)
    held_out = SceneCheck()(images, prompts)
    assert not np.allclose(trained, held_out)
    np.testing.assert_allclose(CombinedReward(comps)(images, prompts).total, trained, rtol=1e-6)
    np.testing.assert_allclose(CombinedReward(comps, evaluation=True)(images, prompts).total, held_out, rtol=1e-6)

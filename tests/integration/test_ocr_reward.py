"""The OCR reward with the real tesseract program on rendered text (no Ray)."""
import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFont

from adascope_ray.rewards import build_scorer
from adascope_ray.rewards.clip_family import RewardWeightsError


def rendered(text: str) -> np.ndarray:
    img = Image.new("RGB", (320, 96), "white")
    ImageDraw.Draw(img).text((12, 22), text, fill="black", font=ImageFont.load_default(size=40))
    return np.asarray(img)


def test_reads_rendered_text_and_scores_the_edit_distance():
    ocr = build_scorer("ocr")
    images = np.stack([rendered("Hello World"), rendered("Hello World"), np.full((96, 320, 3), 255, np.uint8)])
    got = ocr(images, ['a sign that says "hello world"', 'a sign that says "hello there"', 'a sign "hello"'])
    # exact read -> 1; "helloworld" vs "hellothere": 5 substitutions of 10 -> 0.5; a blank page reads nothing -> 0
    np.testing.assert_allclose(got, [1.0, 0.5, 0.0], atol=1e-6)


def test_clear_errors_for_a_missing_program_and_an_unquoted_prompt(tmp_path):
    with pytest.raises(RewardWeightsError, match=r"reward 'ocr'.*no-such-ocr"):
        build_scorer("ocr", path=str(tmp_path / "no-such-ocr"))
    with pytest.raises(ValueError, match="has no quoted text"):
        build_scorer("ocr")(np.stack([rendered("hi")]), ["a plain prompt"])

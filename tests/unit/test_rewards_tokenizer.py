"""JPEG rewards against file sizes written independently; the offline tokenizer
against open_clip's own tokenizer."""
import numpy as np
import pytest
from PIL import Image

from adascope_ray.rewards import available_scorers, build_scorer


def test_jpeg_size_in_kb_matches_a_file_on_disk(tmp_path):
    rng = np.random.default_rng(0)
    images = np.stack([np.full((32, 32, 3), 128, np.uint8), rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)])
    sizes = []
    for i, im in enumerate(images):
        p = tmp_path / f"{i}.jpg"
        Image.fromarray(im).save(p, quality=95)
        sizes.append(p.stat().st_size / 1000)
    comp = build_scorer("jpeg_compressibility")(images, ["a", "b"])
    incomp = build_scorer("jpeg_incompressibility")(images, ["a", "b"])
    assert incomp.tolist() == pytest.approx(sizes) and comp.tolist() == pytest.approx([-s for s in sizes])
    assert comp[0] > comp[1]  # a flat image is more compressible than noise


def test_unknown_reward_is_named():
    with pytest.raises(KeyError, match="nope"):
        build_scorer("nope")
    assert "jpeg_compressibility" in available_scorers()


def test_offline_tokenizer_matches_open_clip(tmp_path):
    from adascope_ray._compat import ensure_torchvision_importable

    ensure_torchvision_importable()
    import open_clip

    from adascope_ray.models.tokenizer import build_clip_tokenizer

    tok = build_clip_tokenizer(tmp_path)
    texts = ["a photo of a cat", "Two RED circles, on the left!", "naïve café 123"]
    ours = tok(texts, padding="max_length", max_length=77, truncation=True).input_ids
    ref = open_clip.tokenize(texts).tolist()
    for a, b in zip(ours, ref):
        n = b.index(49407) + 1  # up to end-of-text; open_clip pads with 0, CLIP with eot
        assert a[:n] == b[:n]
    assert len(tok) == 49408


def test_color_match_hand_values():
    red = np.zeros((1, 4, 4, 3), np.uint8)
    red[..., 0] = 255
    score = build_scorer("color_match")
    # exact match 1; red image for "blue": 1 − ‖(1,0,−1)‖/√3 = 1 − √2/√3 = 0.18350; no colour word: 0.5
    got = score(np.concatenate([red, red, red]), ["a red circle", "a Blue square", "a cat"])
    assert got.tolist() == pytest.approx([1.0, 1 - (2 / 3) ** 0.5, 0.5], abs=1e-6)

"""CLIP-based rewards on tiny random-init CLIPs saved and loaded like released
weights, checked against an independent computation: hand preprocessing (PIL
bicubic resize of the shortest side, centre crop, OpenAI mean/std) and each
reward's formula written out with numpy."""
import numpy as np
import pytest
import torch
from PIL import Image

from adascope_ray.models.tiny_clip import build_aesthetic_head, build_clip_folder
from adascope_ray.rewards import build_scorer
from adascope_ray.rewards.clip_family import RewardWeightsError

MEAN, STD = np.array([0.48145466, 0.4578275, 0.40821073]), np.array([0.26862954, 0.26130258, 0.27577711])


@pytest.fixture(scope="module")
def clip_dir(tmp_path_factory):
    return build_clip_folder(tmp_path_factory.mktemp("clip"))


def scene(h=48, w=40) -> np.ndarray:
    """A non-square image with gradients and a shape, so resize and crop matter."""
    y, x = np.mgrid[0:h, 0:w]
    img = np.stack([x * 255 // w, y * 255 // h, (x + y) * 255 // (h + w)], -1).astype(np.uint8)
    img[h // 4 : h // 2, w // 4 : w // 2] = (250, 30, 30)
    return img


def hand_pixels(img: np.ndarray, side: int = 32) -> np.ndarray:
    h, w = img.shape[:2]
    s = side / min(h, w)
    pil = Image.fromarray(img).resize((round(w * s), round(h * s)), Image.BICUBIC)
    a = np.asarray(pil).astype(np.float64) / 255.0
    top, left = (a.shape[0] - side) // 2, (a.shape[1] - side) // 2
    a = (a[top : top + side, left : left + side] - MEAN) / STD
    return a.transpose(2, 0, 1)[None]                                  # (1, 3, side, side)


def _proj(out):
    # transformers 5 returns an output object whose pooler_output is the projected embedding
    return out if isinstance(out, torch.Tensor) else out.pooler_output


def embeddings(clip_dir, images, prompts):
    from transformers import CLIPModel, CLIPTokenizer

    model = CLIPModel.from_pretrained(str(clip_dir)).eval()
    tok = CLIPTokenizer.from_pretrained(str(clip_dir))
    with torch.no_grad():
        px = torch.tensor(np.concatenate([hand_pixels(im) for im in images]), dtype=torch.float32)
        ei = _proj(model.get_image_features(pixel_values=px)).numpy().astype(np.float64)
        t = tok(prompts, padding=True, return_tensors="pt")
        et = _proj(model.get_text_features(**t)).numpy().astype(np.float64)
    ei /= np.linalg.norm(ei, axis=1, keepdims=True)
    et /= np.linalg.norm(et, axis=1, keepdims=True)
    return ei, et, float(model.logit_scale.exp())


def test_processor_preprocessing_matches_the_hand_recipe(clip_dir):
    from transformers import CLIPProcessor

    px = CLIPProcessor.from_pretrained(str(clip_dir))(images=[scene()], return_tensors="pt")["pixel_values"].numpy()
    np.testing.assert_allclose(px, hand_pixels(scene()), atol=2e-2)  # PIL-to-uint8 rounding at most


def test_clip_score_and_pickscore_formulas(clip_dir):
    images = np.stack([scene(), scene()[::-1].copy()])
    prompts = ["a red square", "a gradient"]
    ei, et, scale = embeddings(clip_dir, images, prompts)
    cos = (ei * et).sum(1)
    clip = build_scorer("clip_score", path=str(clip_dir), device="cpu")(images, prompts)
    pick = build_scorer("pickscore", path=str(clip_dir), device="cpu")(images, prompts)
    np.testing.assert_allclose(clip, 100 * np.maximum(cos, 0), rtol=1e-3, atol=0.05)
    np.testing.assert_allclose(pick, scale * cos, rtol=1e-3, atol=0.02)
    assert scale == pytest.approx(np.exp(2.6592), rel=1e-4)  # CLIP's initial logit scale, log(1/0.07)


@pytest.mark.parametrize("suffix", [".safetensors", ".pth"])
def test_aesthetic_head_is_laions_linear_stack(clip_dir, tmp_path, suffix):
    head = build_aesthetic_head(tmp_path / f"head{suffix}", dim=16)
    images = np.stack([scene(), np.full((48, 40, 3), 128, np.uint8)])
    got = build_scorer("aesthetic", path=str(clip_dir), head_path=str(head), device="cpu")(images, ["", ""])
    ei, _, _ = embeddings(clip_dir, images, ["", ""])
    from safetensors.torch import load_file

    st = load_file(head) if suffix == ".safetensors" else torch.load(head, weights_only=True)
    x = ei
    for i in (0, 2, 4, 6, 7):  # no activations between the layers (dropout is off at eval)
        x = x @ st[f"layers.{i}.weight"].double().numpy().T + st[f"layers.{i}.bias"].double().numpy()
    np.testing.assert_allclose(got, x[:, 0], rtol=1e-3, atol=1e-4)


def test_missing_or_wrong_weights_name_reward_and_path(clip_dir, tmp_path):
    with pytest.raises(RewardWeightsError, match=r"reward 'pickscore': path .*nowhere is not a transformers CLIP folder"):
        build_scorer("pickscore", path=str(tmp_path / "nowhere"))
    with pytest.raises(RewardWeightsError, match=r"reward 'aesthetic': head_path .*missing.pth not found"):
        build_scorer("aesthetic", path=str(clip_dir), head_path=str(tmp_path / "missing.pth"))
    wrong = build_aesthetic_head(tmp_path / "wrong.safetensors", dim=8)
    with pytest.raises(RewardWeightsError, match="does not fit a 16-d CLIP embedding"):
        build_scorer("aesthetic", path=str(clip_dir), head_path=str(wrong))


def test_hpsv2_is_the_cosine_of_open_clip_embeddings(tmp_path):
    """A tiny open_clip architecture saved in HPSv2's checkpoint layout, loaded by the
    reward; the reference embeds by hand-preprocessed pixels with a second model instance."""
    import open_clip

    from adascope_ray.models.tiny_clip import build_hps_checkpoint

    cfg, ckpt = build_hps_checkpoint(tmp_path)
    images = np.stack([scene(), scene()[::-1].copy()])
    prompts = ["a red square", "stripes"]
    got = build_scorer("hpsv2", path=str(ckpt), open_clip_config=str(cfg), device="cpu")(images, prompts)

    ref = open_clip.create_model(cfg.stem, pretrained=None)
    ref.load_state_dict(torch.load(ckpt, weights_only=True)["state_dict"])
    ref.eval()
    with torch.no_grad():
        px = torch.tensor(np.concatenate([hand_pixels(im) for im in images]), dtype=torch.float32)
        ei = ref.encode_image(px).double()
        et = ref.encode_text(open_clip.get_tokenizer(cfg.stem)(prompts)).double()
    ei, et = ei / ei.norm(dim=-1, keepdim=True), et / et.norm(dim=-1, keepdim=True)
    np.testing.assert_allclose(got, (ei * et).sum(-1).numpy(), atol=2e-3)
    with pytest.raises(RewardWeightsError, match=r"reward 'hpsv2': path .*nope.pt not found"):
        build_scorer("hpsv2", path=str(tmp_path / "nope.pt"), open_clip_config=str(cfg))

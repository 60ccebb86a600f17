"""The reward HTTP payload parser and the config loader under malformed and random
input: each either accepts the input or raises its own error type, nothing else."""
import base64
import io
import json

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from adascope_ray.config import ConfigError, config_from_dict, load_config, parse_overrides
from adascope_ray.rewards.payload import PayloadError, parse_score_request


def png_b64(img: np.ndarray, fmt: str = "PNG") -> str:
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format=fmt)
    return base64.b64encode(buf.getvalue()).decode()


def body(obj) -> bytes:
    return json.dumps(obj).encode()


def test_valid_payload_round_trips_exact_pixels():
    rng = np.random.default_rng(0)
    imgs = rng.integers(0, 256, (2, 8, 8, 3), dtype=np.uint8)
    got, prompts = parse_score_request(body({"prompts": ["a", "b"], "images": [png_b64(i) for i in imgs]}), 1 << 20)
    assert prompts == ["a", "b"] and np.array_equal(got, imgs)  # PNG is lossless


@pytest.mark.parametrize("payload, status, words", [
    (b"{not json", 400, "not JSON"),
    (b"\xff\xfe", 400, "not JSON"),
    (body([1, 2]), 400, "JSON object"),
    (body({"prompts": "a", "images": []}), 400, "'prompts' must be a list"),
    (body({"prompts": ["a"], "images": [3]}), 400, "'images' must be a list"),
    (body({"prompts": ["a"], "images": []}), 400, "0 images but 1 prompts"),
    (body({"prompts": [], "images": []}), 400, "no images"),
    (body({"prompts": ["a"], "images": ["%%%"]}), 400, "images[0]: not base64"),
    (body({"prompts": ["a"], "images": [base64.b64encode(b"GIF? no").decode()]}), 400, "images[0]: not a decodable image"),
    (body({"prompts": ["a", "b"], "images": [png_b64(np.zeros((8, 8, 3), np.uint8)), png_b64(np.zeros((4, 4, 3), np.uint8))]}),
     400, "differ in size"),
    (b" " * 2000, 413, "limit is 1000"),
])
def test_malformed_payloads_name_the_problem(payload, status, words):
    with pytest.raises(PayloadError) as err:
        parse_score_request(payload, max_bytes=1000)
    assert err.value.status == status and words in str(err.value)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=300))
def test_fuzz_raw_bytes(data):
    try:
        parse_score_request(data, max_bytes=200)
    except PayloadError as err:
        assert err.status in (400, 413)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12)
images_field = st.lists(st.sampled_from([png_b64(np.zeros((4, 4, 3), np.uint8)), png_b64(np.full((4, 4, 3), 9, np.uint8), "JPEG"),
                                         "", "AAAA", "not base64!", base64.b64encode(b"\x89PNG\r\n\x1a\n").decode()]), max_size=3)


@settings(max_examples=300, deadline=None)
@given(st.fixed_dictionaries({}, optional={"prompts": st.lists(st.text(max_size=10), max_size=3) | json_values,
                                           "images": images_field | json_values}))
def test_fuzz_structured_payloads(doc):
    try:
        imgs, prompts = parse_score_request(body(doc), max_bytes=1 << 20)
    except PayloadError as err:
        assert err.status in (400, 413) and str(err)
    else:  # accepted: consistent shapes
        assert imgs.dtype == np.uint8 and imgs.ndim == 4 and imgs.shape[-1] == 3 and len(imgs) == len(prompts) > 0


config_trees = st.dictionaries(
    st.sampled_from(["run", "data", "model", "sampling", "sampler", "learner", "window", "rewards", "cluster", "publish", "bogus"]),
    json_values | st.dictionaries(st.sampled_from(["iterations", "prompts", "lr", "strategy", "num_steps", "name",
                                                   "components", "group_size", "tau_s", "size", "typo"]), json_values, max_size=4),
    max_size=5)


@settings(max_examples=300, deadline=None)
@given(config_trees)
def test_fuzz_config_trees(tree):
    try:
        config_from_dict(tree, "fuzz.yaml")
    except ConfigError as err:
        assert str(err).startswith("fuzz.yaml")


def test_override_values_that_are_not_yaml_are_named():
    for bad in ('0="', "a.b=\x1f", "x=[1,"):
        with pytest.raises(ConfigError, match="is not valid YAML"):
            parse_overrides([bad])


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=st.text(max_size=200), overrides=st.lists(st.text(max_size=20), max_size=3))
def test_fuzz_config_files_and_overrides(tmp_path, text, overrides):
    path = tmp_path / "c.yaml"
    path.write_text(text, encoding="utf-8")
    try:
        load_config(path, overrides)
    except ConfigError as err:
        assert str(err)
    try:
        parse_overrides(overrides)
    except ConfigError:
        pass

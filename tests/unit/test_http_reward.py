"""The HTTP reward adapter against small local servers speaking each convention."""
import base64
import io
import json
import os
import pickle
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest
from PIL import Image

from adascope_ray.config import ConfigError, config_from_dict
from adascope_ray.rewards import build_scorer
from adascope_ray.rewards.http_adapter import RewardServerError


def mean_brightness(jpeg: bytes) -> float:
    return float(np.asarray(Image.open(io.BytesIO(jpeg)).convert("L")).mean())


class Handler(BaseHTTPRequestHandler):
    """Scores = mean brightness of each decoded JPEG + len(prompt); or misbehaves on request."""
    mode = "ok"

    def do_POST(self):  # noqa: N802
        raw = self.rfile.read(int(self.headers["Content-Length"]))
        if self.path == "/json":
            doc = json.loads(raw)
            jpegs = [base64.b64decode(s) for s in doc["images"]]
            out = json.dumps({"scores": [mean_brightness(j) + len(p) for j, p in zip(jpegs, doc["prompts"])]}).encode()
        elif self.path == "/pickle":
            doc = pickle.loads(raw)  # the test's own trusted server
            scores = np.asarray([mean_brightness(j) + len(q) for j, q in zip(doc["images"], doc["queries"])])
            out = pickle.dumps({"scores": scores, "meta": {"n": len(scores)}})
        elif self.path == "/hostile":
            out = pickle.dumps({"scores": [1.0], "x": _Evil()})
        elif self.path == "/short":
            out = json.dumps({"scores": [1.0]}).encode()
        else:
            self.send_response(500)
            self.end_headers()
            self.wfile.write(b"boom")
            return
        self.send_response(200)
        self.end_headers()
        self.wfile.write(out)

    def log_message(self, *args):
        pass


class _Evil:
    def __reduce__(self):
        return (os.system, ("echo should-never-run",))


@pytest.fixture(scope="module")
def server():
    srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{srv.server_address[1]}"
    srv.shutdown()


IMAGES = np.stack([np.full((16, 16, 3), 40, np.uint8), np.full((16, 16, 3), 200, np.uint8)])


@pytest.mark.parametrize("protocol", ["json", "pickle"])
def test_both_conventions_score_what_the_server_computes(server, protocol):
    score = build_scorer("http", url=f"{server}/{protocol}", protocol=protocol)
    got = score(IMAGES, ["a", "abc"])
    # flat grey survives JPEG almost exactly: brightness 40 and 200, plus the prompt lengths 1 and 3
    np.testing.assert_allclose(got, [40 + 1, 200 + 3], atol=1.0)
    assert got.dtype == np.float32


def test_server_failures_are_named(server):
    with pytest.raises(RewardServerError, match="answered 500"):
        build_scorer("http", url=f"{server}/fail")(IMAGES, ["a", "b"])
    with pytest.raises(RewardServerError, match="refusing to unpickle"):
        build_scorer("http", url=f"{server}/hostile", protocol="pickle")(IMAGES, ["a", "b"])
    with pytest.raises(RewardServerError, match="unreachable"):
        build_scorer("http", url="http://127.0.0.1:9/x", timeout_s=2)(IMAGES, ["a", "b"])


def test_wrong_count_from_the_server_is_an_error_naming_the_reward(server):
    from adascope_ray.rewards.base import check_scores

    scores = build_scorer("http", url=f"{server}/short")(IMAGES, ["a", "b"])
    with pytest.raises(ValueError, match="reward 'http' returned 1 scores for 2 images"):
        check_scores("http", scores, 2)


def test_http_reward_config():
    base = {"data": {"prompts": ["x"], "prompts_per_iteration": 1}}
    cfg = config_from_dict({**base, "rewards": {"components": [{"name": "http", "url": "http://127.0.0.1:1/s", "protocol": "pickle"}]}})
    assert cfg.rewards.components[0].scorer_options() == {"url": "http://127.0.0.1:1/s", "protocol": "pickle", "timeout_s": 60.0}
    with pytest.raises(ConfigError, match="url is required"):
        config_from_dict({**base, "rewards": {"components": [{"name": "http"}]}})
    with pytest.raises(ConfigError, match="url"):
        config_from_dict({**base, "rewards": {"components": [{"name": "http", "url": "ftp://x"}]}})

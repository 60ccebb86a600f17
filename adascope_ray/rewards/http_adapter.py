"""A reward scored by an external HTTP server the user already runs (no ray).

Two payload conventions:

    json    POST {"prompts": [str], "images": [base64 JPEG]}  ->  {"scores": [float]}
            (what this project's own reward endpoint speaks, so apps can be chained)
    pickle  POST pickle({"images": [JPEG bytes], "prompts": [str], "queries": [str]})
            -> pickle({"scores": [float], ...})
            (the reward-server convention of ddpo-pytorch and flow_grpo)

Images go out as JPEG at `jpeg_quality`. A pickled response is read with an
unpickler that admits only plain containers, numbers, strings and numpy arrays,
so a hostile server cannot run code here.
"""
from __future__ import annotations

import base64
import io
import json
import pickle
import urllib.error
import urllib.request

import numpy as np


class RewardServerError(RuntimeError):
    """The external reward server failed or answered something unusable."""


_ALLOWED = {
    ("builtins", n) for n in ("dict", "list", "tuple", "set", "frozenset", "str", "bytes", "int", "float", "bool", "complex")
} | {
    ("numpy", "ndarray"), ("numpy", "dtype"), ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"), ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"), ("collections", "OrderedDict"),
}


class _SafeUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str):
        if (module, name) not in _ALLOWED:
            raise pickle.UnpicklingError(f"refusing to unpickle {module}.{name} from a reward server")
        return super().find_class(module, name)


def safe_loads(data: bytes):
    return _SafeUnpickler(io.BytesIO(data)).load()


def jpeg_bytes(image: np.ndarray, quality: int) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="JPEG", quality=quality)
    return buf.getvalue()


class HttpReward:
    name = "http"

    def __init__(self, url: str, protocol: str = "json", timeout_s: float = 60.0, jpeg_quality: int = 95):
        self.url, self.protocol, self.timeout_s, self.quality = url, protocol, timeout_s, jpeg_quality

    def __call__(self, images: np.ndarray, prompts: list[str]) -> np.ndarray:
        jpegs = [jpeg_bytes(im, self.quality) for im in images]
        if self.protocol == "pickle":
            body, ctype = pickle.dumps({"images": jpegs, "prompts": list(prompts), "queries": list(prompts)}), \
                "application/octet-stream"
        else:
            body, ctype = json.dumps({"prompts": list(prompts),
                                      "images": [base64.b64encode(j).decode() for j in jpegs]}).encode(), "application/json"
        req = urllib.request.Request(self.url, data=body, headers={"Content-Type": ctype}, method="POST")
        try:
            with urllib.request.urlopen(req, timeout=self.timeout_s) as resp:
                raw = resp.read()
        except urllib.error.HTTPError as err:
            raise RewardServerError(f"reward server {self.url} answered {err.code}: {err.read()[:300]!r}") from None
        except (urllib.error.URLError, OSError) as err:
            raise RewardServerError(f"reward server {self.url} unreachable: {err}") from None
        try:
            doc = safe_loads(raw) if self.protocol == "pickle" else json.loads(raw)
            scores = np.asarray(doc["scores"], dtype=np.float32).reshape(-1)
        except (pickle.UnpicklingError, ValueError, KeyError, TypeError, EOFError) as err:
            raise RewardServerError(f"reward server {self.url}: unusable answer ({type(err).__name__}: {err})") from None
        return scores

"""Import-time fixes for the CPU install path.

PyPI's torchvision wheel is a CUDA build. Next to a CPU torch its compiled extension
fails to load, and `import torchvision` then dies registering fake kernels for
`torchvision::nms` ("operator torchvision::nms does not exist"). That also breaks
`open_clip`, `timm` and transformers' CLIP image classes, which import torchvision.

`ensure_torchvision_importable()` declares the schemas of the two ops that
torchvision registers Python-side kernels for (`nms`, `qnms`) *only* when its
compiled extension cannot be loaded, so the pure-Python parts import. The compiled
ops stay unavailable; this project uses none of them. On a GPU install with a
matching torchvision the function does nothing.

Ray starts fresh worker processes, so the same call runs in every worker through
`runtime_env={"worker_process_setup_hook": "adascope_ray._compat.setup_worker"}`.
"""
from __future__ import annotations

import importlib.util
import os
import sys

_LIB = None  # keeps the torch.library.Library alive for the life of the process


def _torchvision_extension_loads() -> bool:
    spec = importlib.util.find_spec("torchvision")
    if spec is None or not spec.submodule_search_locations:
        return True  # no torchvision: nothing to fix
    import torch

    folder = spec.submodule_search_locations[0]
    for name in os.listdir(folder):
        if name.startswith("_C") and name.endswith((".so", ".pyd")):
            try:
                torch.ops.load_library(os.path.join(folder, name))
                return True
            except (OSError, RuntimeError):
                return False
    return False


def ensure_torchvision_importable() -> None:
    """Make `import torchvision` work next to a CPU torch (idempotent)."""
    global _LIB
    if _LIB is not None or "torchvision" in sys.modules:
        return
    if _torchvision_extension_loads():
        return
    import torch

    try:
        torch.ops.torchvision.nms  # already declared by someone else
        return
    except (AttributeError, RuntimeError):
        pass
    _LIB = torch.library.Library("torchvision", "DEF")
    _LIB.define("nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
    _LIB.define(
        "qnms(Tensor dets, Tensor scores, float iou_threshold, float scale, int zero_point)"
        " -> Tensor"
    )


def setup_worker() -> None:
    """Ray `worker_process_setup_hook`: runs first in every worker process."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    ensure_torchvision_importable()

"""adascope_ray: RL fine-tuning of text-to-image diffusion models on Ray, with
AdaScope's adaptive timestep window."""
from ._compat import ensure_torchvision_importable as _fix_torchvision

_fix_torchvision()
__version__ = "0.1.0"

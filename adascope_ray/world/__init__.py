"""The shapes world: procedurally generated scenes with captions (no ray, no torch)."""
from .scenes import Scene, caption, render, sample_scene

__all__ = ["Scene", "caption", "render", "sample_scene"]

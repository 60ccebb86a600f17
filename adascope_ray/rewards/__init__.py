"""Reward scorers: (images uint8 (B, H, W, 3), prompts) -> rewards (B,). No ray."""
from .base import Scorer, build_scorer, available_scorers

__all__ = ["Scorer", "build_scorer", "available_scorers"]

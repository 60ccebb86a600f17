"""Cost in forward-pass units (docs/adascope.md, "Cost per trajectory").

A forward pass of the denoiser over one latent is 1 unit; a pass the learner
differentiates through (forward + backward) is 3. Classifier-free guidance doubles
both, because the conditional and unconditional latents both go through the model.
The code counts the rows it really pushes through the model; these closed forms are
the reference the counts are checked against.
"""
from __future__ import annotations

LEARNER_PASS_FACTOR = 3


def sampler_passes(trajectories: int, steps: int, cfg: bool) -> int:
    return trajectories * steps * (2 if cfg else 1)


def learner_passes(trained_pairs: int, cfg: bool, epochs: int = 1) -> int:
    return LEARNER_PASS_FACTOR * trained_pairs * (2 if cfg else 1) * epochs


def cost_fwd_equiv(sampler_rows: int, learner_rows: int) -> int:
    """Sampler rows forwarded + 3 × learner rows differentiated through."""
    return sampler_rows + LEARNER_PASS_FACTOR * learner_rows

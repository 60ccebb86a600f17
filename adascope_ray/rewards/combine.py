"""Score with every configured component and combine by weight, in one process (the
Serve application does the same across its deployments; cluster/serve_app.py)."""
from __future__ import annotations

import numpy as np

from ..types import RewardResult
from .base import build_scorer, check_scores


class CombinedReward:
    """(images, prompts) -> RewardResult: each component, its per-check breakdown when
    the scorer has one ("<name>/<check>", NaN where a check does not apply), and the
    weighted total. evaluation=True scores with each component's held-out form
    (RewardComponentConfig.evaluation_options), as the in-run evaluation does."""

    def __init__(self, components, evaluation: bool = False):
        self.parts = [(c.name, c.weight, build_scorer(c.name, **(c.evaluation_options() if evaluation else c.scorer_options())))
                      for c in components]

    def embedder(self, name: str):
        """The image embedder of component `name` (a CLIP-family reward), as numpy."""
        from .clip_family import image_embedder

        scorer = next((sc for n, _, sc in self.parts if n == name), None)
        if scorer is None:
            raise ValueError(f"reward {name!r} is not among the components {[n for n, _, _ in self.parts]}")
        return image_embedder(name, scorer)

    def __call__(self, images: np.ndarray, prompts: list[str]) -> RewardResult:
        comps, total = {}, np.zeros(len(prompts), np.float32)
        for name, weight, scorer in self.parts:
            if hasattr(scorer, "breakdown"):
                scores, checks = scorer.breakdown(images, prompts)
            else:
                scores, checks = scorer(images, prompts), {}
            comps[name] = check_scores(name, scores, len(prompts))
            comps.update({f"{name}/{k}": check_scores(name, v, len(prompts)) for k, v in checks.items()})
            total = total + weight * comps[name]
        return RewardResult(np.asarray(total, np.float32), comps)

"""The learner's replay buffer of scored trajectories (sqdf, lasro; no ray).

Each entry is one trajectory as the samplers produced it: its latents x_0 … x_K, its
text conditioning, the Serve reward, the weights version that sampled it, a group key
(the samples of one prompt in one batch share it) and the surrogate's cached features
of its final latent. A full buffer drops its oldest entries. Draws are uniform, or
prioritised: p_i ∝ (r_i − min r + 1e-3) · decay^(version − v_i) — ours: the sources
name reward-prioritised replay without fixing the form. The whole buffer is part of
the learner's state, so a resumed run draws exactly what an uninterrupted one would.
"""
from __future__ import annotations

import numpy as np
import torch

FIELDS = ("latents", "embeds", "reward", "version", "group", "features")  # tensors kept per entry


class ReplayBuffer:
    def __init__(self, cfg):
        self.cfg = cfg
        self.data: dict[str, torch.Tensor] = {}  # name -> (N, ...) CPU tensors, oldest first
        self.pooled: torch.Tensor | None = None   # (N, P) SD3/SDXL-class pooled text, else None
        self.prompts: list[str] = []
        self.next_group = 0                      # group keys never repeat across batches
        self.added = 0                           # trajectories ever added

    def __len__(self) -> int:
        return len(self.prompts)

    def add(self, latents: torch.Tensor, embeds: torch.Tensor, rewards: np.ndarray, group_ids: np.ndarray,
            version: int, features: torch.Tensor, prompts: list[str], pooled: torch.Tensor | None = None) -> np.ndarray:
        """Store B trajectories (latents (B, K+1, C, H, W), embeds (B, L, D), features (B, F));
        returns the positions of those still held after the add (all B unless
        the capacity is smaller than B)."""
        g = np.unique(group_ids, return_inverse=True)[1] + self.next_group
        self.next_group = int(g.max()) + 1 if len(g) else self.next_group
        new = {"latents": latents.detach().float().cpu(), "embeds": embeds.detach().float().cpu(),
               "reward": torch.as_tensor(rewards, dtype=torch.float64), "version": torch.full((len(prompts),), version),
               "group": torch.as_tensor(g, dtype=torch.int64), "features": features.detach().float().cpu()}
        self.data = {k: torch.cat([self.data[k], v]) if self.data else v for k, v in new.items()}
        if pooled is not None:
            self.pooled = pooled.detach().float().cpu() if self.pooled is None else torch.cat([self.pooled, pooled.detach().float().cpu()])
        self.prompts += list(prompts)
        self.added += len(prompts)
        drop = max(len(self) - self.cfg.capacity, 0)
        if drop:
            self.data = {k: v[drop:] for k, v in self.data.items()}
            self.pooled = None if self.pooled is None else self.pooled[drop:]
            self.prompts = self.prompts[drop:]
        return np.arange(max(len(self) - len(prompts), 0), len(self))  # the new entries that fit

    def probabilities(self, version: int) -> np.ndarray:
        """(N,) the draw's distribution (module docstring)."""
        n = len(self)
        if self.cfg.sampling == "uniform":
            return np.full(n, 1.0 / n)
        r = self.data["reward"].numpy()
        age = version - self.data["version"].numpy()
        w = (r - r.min() + 1e-3) * self.cfg.decay ** age
        return w / w.sum()

    def draw(self, n: int, rng: np.random.Generator, version: int, exclude: np.ndarray | None = None) -> np.ndarray:
        """n positions drawn with replacement (fewer when the buffer is empty), never from `exclude`."""
        p = self.probabilities(version) if len(self) else np.zeros(0)
        if exclude is not None and len(exclude):
            p = p.copy()
            p[exclude] = 0.0
        if n == 0 or p.sum() <= 0:
            return np.zeros(0, int)
        return rng.choice(len(self), size=n, p=p / p.sum())

    def groups(self) -> np.ndarray:
        return self.data["group"].numpy() if self.data else np.zeros(0, int)

    def ages(self, version: int, idx: np.ndarray) -> np.ndarray:
        return version - self.data["version"].numpy()[idx]

    # ---- the learner's state --------------------------------------------------
    def state(self) -> tuple[dict[str, torch.Tensor], dict]:
        tensors = {f"replay.{k}": v.clone() for k, v in self.data.items()}
        if self.pooled is not None:
            tensors["replay.pooled"] = self.pooled.clone()
        return tensors, {"prompts": list(self.prompts), "next_group": self.next_group, "added": self.added}

    def load_state(self, tensors: dict[str, torch.Tensor], meta: dict) -> None:
        self.data = {k: tensors[f"replay.{k}"].clone() for k in FIELDS if f"replay.{k}" in tensors}
        self.pooled = tensors["replay.pooled"].clone() if "replay.pooled" in tensors else None
        self.prompts, self.next_group, self.added = list(meta["prompts"]), int(meta["next_group"]), int(meta["added"])

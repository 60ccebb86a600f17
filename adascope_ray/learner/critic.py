"""What a gradient-based learner (sqdf, lasro) differentiates: r(x̂0) for clean latents,
and the replay buffer it learns from (no ray).

    reward = "surrogate":      r = s(x̂0, c), the latent-space surrogate (surrogate.py),
                               trained here from the Serve rewards of stored trajectories
    reward = "differentiable": r = Σ_j w_j r_j(decode(x̂0)), the run's CLIP-family reward
                               components through torch on the learner (rewards/differentiable.py)
Either way the Serve deployments stay the source of the logged reward.
"""
from __future__ import annotations

import numpy as np
import torch

from .replay import ReplayBuffer
from .surrogate import LatentSurrogate


class Critic:
    def __init__(self, learner, learner_cfg, reward: str, rewards_cfg=None):
        self.learner = learner
        self.replay = ReplayBuffer(learner_cfg.replay)
        self.kind = reward
        self.surrogate: LatentSurrogate | None = None
        self.rewards: list[tuple[float, object]] = []
        if reward == "differentiable":
            from ..rewards.differentiable import differentiable_reward

            if rewards_cfg is None:
                raise ValueError("a differentiable reward (learner.sqdf.reward=differentiable, learner.algorithm=draft) needs the run's rewards config")
            self.rewards = [(c.weight, differentiable_reward(c)) for c in rewards_cfg.components]
        self.cfg = learner_cfg.surrogate
        self.seed = learner_cfg.seed
        self.scale = (0.0, 1.0)  # (m, sd) of the surrogate's scores over the buffer, set by fit

    # ---- data -------------------------------------------------------------------
    def observe(self, batch, keep: np.ndarray, version: int) -> tuple[np.ndarray, dict[str, float]]:
        """Store the kept samples of a fresh batch; before the surrogate trains on them,
        measure how it ranks them (held-out). Returns their buffer positions and metrics."""
        idx = np.flatnonzero(keep)
        if len(idx) == 0:
            return np.zeros(0, int), {}
        t = torch.from_numpy(idx).to(batch.latents.device)
        final = batch.latents[t, -1]                                          # (n, C, H, W) x_K
        feats = self.learner.reference_features(final, batch.embeds[t]) if self.kind == "surrogate" \
            else torch.zeros(len(idx), 0)
        metrics = {}
        if self.kind == "surrogate":
            if self.surrogate is None:
                self.surrogate = LatentSurrogate(self.cfg, feats.shape[1], batch.embeds.shape[-1], feats.device, self.seed)
            if self.surrogate.updates:
                metrics = self.surrogate.held_out(feats, batch.embeds[t], batch.rewards[idx], batch.group_ids[idx])
        else:  # how closely what the learner differentiates follows what Serve logged
            with torch.no_grad():
                r = self.reward(final, batch.embeds[t], [batch.prompts[i] for i in idx]).double().cpu().numpy()
            served = np.asarray(batch.rewards[idx], np.float64)
            if len(r) > 1 and np.std(r) > 0 and np.std(served) > 0:
                metrics = {"critic/serve_corr": float(np.corrcoef(r, served)[0, 1])}
        pos = self.replay.add(batch.latents[t], batch.embeds[t], batch.rewards[idx], batch.group_ids[idx], version,
                              feats, [batch.prompts[i] for i in idx], None if batch.pooled is None else batch.pooled[t])
        return pos, metrics

    def fit(self, rng: np.random.Generator) -> dict[str, float]:
        """Train the surrogate on the buffer (nothing to train for differentiable rewards),
        then standardise it: r = (s − m) / sd with m, sd its scores' mean and std over the
        buffer, so that r is in units of the spread of stored samples and α means the same
        whatever scale the ranking loss left s at."""
        if self.surrogate is None:
            return {}
        metrics = self.surrogate.fit(self.replay, rng)
        with torch.no_grad():
            d = self.replay.data
            s = self.surrogate.score(d["features"].to(self.learner.device), d["embeds"].to(self.learner.device))
        self.scale = (float(s.mean()), max(float(s.std()), 1e-6) if len(s) > 1 else 1.0)
        return {**metrics, "surrogate/score_std": self.scale[1]}

    @property
    def ready(self) -> bool:
        """The policy may follow r (after this update's fit): the surrogate has trained in
        more than warmup_updates updates."""
        return self.kind != "surrogate" or (self.surrogate is not None and self.surrogate.updates > self.cfg.warmup_updates)

    def draw(self, fresh: np.ndarray, n: int, ratio: float, rng: np.random.Generator, version: int) -> np.ndarray:
        """n buffer positions: round(ratio · n) from older entries, the rest from `fresh`."""
        old = self.replay.draw(int(round(ratio * n)), rng, version, exclude=fresh)
        new = rng.choice(fresh, size=n - len(old), replace=len(fresh) < n - len(old)) if len(fresh) else np.zeros(0, int)
        return np.concatenate([new, old]).astype(int)

    def rows(self, pos: np.ndarray, device: torch.device) -> dict:
        """The stored tensors of buffer positions, on `device`."""
        d, t = self.replay.data, torch.from_numpy(pos)
        return {"latents": d["latents"][t].to(device), "embeds": d["embeds"][t].to(device),
                "pooled": None if self.replay.pooled is None else self.replay.pooled[t].to(device),
                "prompts": [self.replay.prompts[i] for i in pos]}

    # ---- r(x̂0) --------------------------------------------------------------------
    def reward(self, x0: torch.Tensor, embeds: torch.Tensor, prompts: list[str]) -> torch.Tensor:
        """r (n,) of clean latents x0 (n, C, H, W), with a gradient to x0."""
        if self.kind == "surrogate":
            m, sd = self.scale
            return (self.surrogate.score(self.learner.reference_features(x0, embeds), embeds) - m) / sd
        images = self.learner.decode(x0)                                       # (n, 3, H, W) in [0, 1]
        return sum(w * r(images, prompts) for w, r in self.rewards)

    # ---- state ---------------------------------------------------------------------
    def state(self) -> tuple[dict[str, torch.Tensor], dict]:
        tensors, meta = self.replay.state()
        out = {"replay": meta}
        if self.surrogate is not None:
            st, sm = self.surrogate.state()
            tensors.update(st)
            out["surrogate"] = sm
        return tensors, out

    def load_state(self, tensors: dict[str, torch.Tensor], meta: dict) -> None:
        self.replay.load_state(tensors, meta["replay"])
        if "surrogate" in meta:
            feats = tensors["replay.features"]
            emb = tensors["replay.embeds"]
            self.surrogate = LatentSurrogate(self.cfg, feats.shape[1], emb.shape[-1], self.learner.device, self.seed)
            self.surrogate.load_state(tensors, meta["surrogate"])

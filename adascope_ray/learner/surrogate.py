"""The latent-space surrogate reward (LaSRO, arXiv 2411.15247; no ray).

    x   (B, C, H, W) a clean latent (a final sample, or a one-step x̂0 prediction)
    c   (B, L, D) its text conditioning; c̄ = mean_L c (B, D)
    φ   = [mean_hw h, std_hw h]  (B, 2C'), h the frozen reference denoiser's mid-block
          activations at the least noisy timestep of the schedule, conditioned on c
    s   = MLP([φ, c̄]) (B,)  — the surrogate's score; only the MLP (the head) is trained

The head is trained online from the Serve rewards by the pairwise ranking loss within
prompt groups (core/ranking.py) on groups drawn from the replay buffer, whose entries
carry φ of their final latent (computed once, when stored). Because φ is the frozen
denoiser's, ∂s/∂x exists wherever the denoiser is differentiable: that is what turns a
reward without a gradient (the shapes world's scene_check) into one.

Ours, where the source is silent: the feature layer (mid-block), its timestep, the
pooling, the head's shape, ranking within groups only.
"""
from __future__ import annotations

import numpy as np
import torch

from ..core.ranking import group_pairs, pairwise_ranking_loss, ranking_accuracy
from .optim_state import load_optimizer, optimizer_tensors


class LatentSurrogate:
    def __init__(self, cfg, feature_dim: int, text_dim: int, device: torch.device, seed: int):
        self.cfg = cfg
        g = torch.Generator().manual_seed(seed)
        head = torch.nn.Sequential(torch.nn.Linear(feature_dim + text_dim, cfg.hidden), torch.nn.SiLU(),
                                   torch.nn.Linear(cfg.hidden, cfg.hidden), torch.nn.SiLU(), torch.nn.Linear(cfg.hidden, 1))
        with torch.no_grad():  # a reproducible init that does not move the global RNG
            for p in head.parameters():
                p.copy_(torch.randn(p.shape, generator=g) * (0.0 if p.dim() == 1 else 1.0 / np.sqrt(p.shape[-1])))
        self.head = head.to(device)
        self.optimizer = torch.optim.Adam(self.head.parameters(), lr=cfg.lr)
        self.updates = 0  # learner updates the head has trained in

    def score(self, features: torch.Tensor, embeds: torch.Tensor) -> torch.Tensor:
        """s (B,) from φ (B, F) and the text conditioning (B, L, D)."""
        x = torch.cat([features, embeds.mean(1).to(features.dtype)], dim=1)
        return self.head(x).squeeze(1)

    def fit(self, replay, rng: np.random.Generator) -> dict[str, float]:
        """steps_per_update steps of the ranking loss on groups drawn from the buffer."""
        groups = replay.groups()
        rewards = replay.data["reward"].numpy() if len(replay) else np.zeros(0)
        ranked = [g for g in np.unique(groups) if len(np.unique(rewards[groups == g])) > 1]
        losses = []
        if ranked:
            for _ in range(self.cfg.steps_per_update):
                chosen = rng.choice(ranked, size=min(self.cfg.groups_per_step, len(ranked)), replace=False)
                idx = np.flatnonzero(np.isin(groups, chosen))
                i, j = group_pairs(rewards[idx], groups[idx], self.cfg.margin)
                dev = self.optimizer.param_groups[0]["params"][0].device
                s = self.score(replay.data["features"][idx].to(dev), replay.data["embeds"][idx].to(dev))
                loss = pairwise_ranking_loss(s, i, j)
                self.optimizer.zero_grad(set_to_none=True)
                loss.backward()
                self.optimizer.step()
                losses.append(float(loss.detach()))
        self.updates += 1
        return {"surrogate/loss": float(np.mean(losses)) if losses else float("nan"),
                "surrogate/ranked_groups": float(len(ranked))}

    @torch.no_grad()
    def held_out(self, features: torch.Tensor, embeds: torch.Tensor, rewards: np.ndarray, group_ids: np.ndarray
                 ) -> dict[str, float]:
        """How well the head, before it sees them, ranks new samples: pairwise accuracy
        within their groups and the Pearson correlation of s with the true reward."""
        s = self.score(features, embeds).double().cpu().numpy()
        i, j = group_pairs(rewards, group_ids, self.cfg.margin)
        corr = float(np.corrcoef(s, rewards)[0, 1]) if len(s) > 1 and np.std(s) > 0 and np.std(rewards) > 0 else float("nan")
        return {"surrogate/held_out_accuracy": ranking_accuracy(s, i, j), "surrogate/held_out_corr": corr,
                "surrogate/held_out_pairs": float(len(i))}

    def state(self) -> tuple[dict[str, torch.Tensor], dict]:
        tensors = {f"surrogate.head.{k}": v.detach().cpu().clone() for k, v in self.head.state_dict().items()}
        opt, meta = optimizer_tensors(self.optimizer, "surrogate.opt.")
        return {**tensors, **opt}, {**meta, "updates": self.updates}

    def load_state(self, tensors: dict[str, torch.Tensor], meta: dict) -> None:
        self.head.load_state_dict({k[len("surrogate.head."):]: v for k, v in tensors.items()
                                   if k.startswith("surrogate.head.")})
        load_optimizer(self.optimizer, tensors, meta, "surrogate.opt.")
        self.updates = int(meta["updates"])

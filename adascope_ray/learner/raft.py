"""Reward-ranked fine-tuning as a learner algorithm (learner.algorithm = raft; the math
in core/raft.py).

One update:
  1. rank   — in each prompt group the top_k finite samples by reward are kept (a group
              whose rewards tie keeps none)
  2. steps  — optimizer_steps times: batch_size terms, each a kept sample's final latent
              x0 and a step k drawn from the window's steps of the kept samples (the
              window decides which noise levels are trained), fresh ε, and the denoising
              loss of the conditional prediction f_θ(√ᾱ_k x0 + √(1−ᾱ_k) ε, t_k, c)
Each term costs one conditional denoiser pass (counted as a learner row), or two with
learner.raft.fit = guided, which fits the guided prediction the samplers run.
"""
from __future__ import annotations

import numpy as np
import torch

from ..core.raft import denoising_loss, denoising_target, noised, ranked_keep
from ..models.policy import DiffusionPolicy
from .sqdf import Trained, step_distribution


class Raft:
    def __init__(self, learner, learner_cfg, rewards_cfg=None):
        if not isinstance(learner.policy, DiffusionPolicy):
            raise ValueError("learner.algorithm=raft fits ε- or v-predicting denoisers on a DDIM schedule; "
                             f"this model's policy is {type(learner.policy).__name__}")
        self.learner, self.cfg = learner, learner_cfg.raft

    def train(self, batch, keep: np.ndarray, mask: np.ndarray) -> Trained:
        lr = self.learner
        k_steps = mask.shape[1]
        kept = np.flatnonzero(ranked_keep(batch.rewards, batch.group_ids, self.cfg.top_k, valid=keep))
        hist = np.zeros(k_steps)
        metrics = {"raft/kept": float(len(kept)),
                   "raft/kept_reward": float(batch.rewards[kept].mean()) if len(kept) else float("nan")}
        if not len(kept):
            return Trained(hist=hist.tolist(), metrics=metrics)
        p_k = step_distribution(mask[kept])
        final = torch.full((len(kept),), k_steps)
        x0_kept = batch.latent(torch.from_numpy(kept), final)                 # (n_kept, C, H, W) the clean x0
        loss_sum, norms, skipped, n = 0.0, [], 0, self.cfg.batch_size
        for _ in range(self.cfg.optimizer_steps):
            which = lr.rng.integers(len(kept), size=n)                       # (n,) positions in kept
            ks = lr.rng.choice(k_steps, size=n, p=p_k)                       # (n,) steps
            eps = torch.randn((n, *x0_kept.shape[1:]), generator=lr.generator).to(lr.device)  # drawn whole: ranks agree
            np.add.at(hist, ks, 1)
            lr.optimizer.zero_grad(set_to_none=True)
            terms = np.stack([np.arange(n), ks], 1)                          # (n, 2): (term, k)
            step_loss = 0.0
            for mb in lr._micro_batches(lr.ranks.share(terms)):
                j = mb[:, 0]
                loss = self.loss(batch, kept[which[j]], x0_kept[which[j]], eps[j], mb[:, 1]).mean()
                (loss * len(mb) / n).backward()
                step_loss += len(mb) * float(loss.detach())
            loss_sum += float(lr.ranks.sum([step_loss], lr.device)[0]) / n
            norm, ok = lr.clip_and_step()
            skipped += not ok
            if ok:
                norms.append(norm)
        metrics["raft/loss"] = loss_sum / self.cfg.optimizer_steps
        return Trained(metrics["raft/loss"], float(np.mean(norms)) if norms else float("nan"), skipped,
                       n * self.cfg.optimizer_steps, hist.tolist(), metrics)

    def loss(self, batch, rows: np.ndarray, x0: torch.Tensor, eps: torch.Tensor, ks: np.ndarray) -> torch.Tensor:
        """(n,) denoising loss of samples `rows` (their x0 (n, C, H, W), noise eps) at steps ks (n,)."""
        lr, s = self.learner, self.learner.policy.schedule
        a = s.alpha_bars[torch.from_numpy(ks)].to(x0.device)                 # (n,) ᾱ_k
        t = s.timesteps[torch.from_numpy(ks)].to(x0.device)                  # (n,) t_k
        i = torch.from_numpy(rows)
        pooled = None if batch.pooled is None else batch.pooled[i]
        guided = self.cfg.fit == "guided"
        uncond = None if batch.negative is None or not guided else batch.negative.expand(len(rows), -1, -1)
        neg_pooled = None if batch.negative_pooled is None or not guided else batch.negative_pooled.expand(len(rows), -1)
        out = lr.policy.predict(noised(x0, eps, a), t, batch.embeds[i], uncond, pooled, neg_pooled, guided=guided)
        return denoising_loss(out, denoising_target(x0, eps, a, lr.policy.prediction_type))

    def state(self):
        return {}, {}

    def load_state(self, tensors, meta) -> None:
        pass

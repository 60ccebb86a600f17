"""SQDF as a learner algorithm (learner.algorithm = sqdf; the math in core/sqdf.py).

One update:
  1. observe  — the fresh batch's finite samples go into the replay buffer
  2. fit      — the surrogate's head trains on the buffer (reward = surrogate)
  3. steps    — optimizer_steps times: draw batch_size trajectories (replay.ratio of them
                from older entries), a step k for each from the window's steps, then
                x_{k+1} = μ_θ(x_k) + σ_k z (with a gradient), x̂0 of x_{k+1} by the frozen
                reference's Tweedie estimate (x̂0 = x_K at the last step), r(x̂0), the
                reference's μ_ref(x_k), and L = −mean(γ^{K−k−1} r − α KL_k)
Each step costs the policy's pass at x_k, the reference's at x_k and at x_{k+1} (all
counted as learner rows), and r's (the surrogate's feature pass, or decode + scorer).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from ..core.sqdf import sqdf_loss
from .critic import Critic


@dataclass
class Trained:
    """What an algorithm's training did in one update (the learner's UpdateStats come from it)."""
    loss: float = 0.0
    grad_norm: float = float("nan")
    skipped: int = 0
    pairs: int = 0                                     # (trajectory, step) terms differentiated
    hist: list[float] = field(default_factory=list)    # (K,) terms per step
    metrics: dict[str, float] = field(default_factory=dict)


def step_distribution(mask: np.ndarray) -> np.ndarray:
    """(K,) the share of a (B, K) window mask's selections at each step: where k is drawn
    from (uniform over all K steps when nothing is selected)."""
    counts = mask.sum(0).astype(np.float64)
    return counts / counts.sum() if counts.sum() > 0 else np.full(mask.shape[1], 1.0 / mask.shape[1])


class Sqdf:
    def __init__(self, learner, learner_cfg, rewards_cfg=None):
        self.learner, self.cfg = learner, learner_cfg.sqdf
        self.replay_ratio = learner_cfg.replay.ratio
        self.critic = Critic(learner, learner_cfg, self.cfg.reward, rewards_cfg)

    def train(self, batch, keep: np.ndarray, mask: np.ndarray) -> Trained:
        lr = self.learner
        fresh, metrics = self.critic.observe(batch, keep, lr.version)
        metrics.update(self.critic.fit(lr.rng))
        k_steps = mask.shape[1]
        hist = np.zeros(k_steps)
        if not self.critic.ready or len(fresh) == 0:
            return Trained(hist=hist.tolist(), metrics=metrics)
        p_k = step_distribution(mask[keep])
        sums, norms, skipped, ages = np.zeros(4), [], 0, []
        for _ in range(self.cfg.optimizer_steps):
            pos = self.critic.draw(fresh, self.cfg.batch_size, self.replay_ratio, lr.rng, lr.version)
            ks = lr.rng.choice(k_steps, size=len(pos), p=p_k)
            ages.append(self.critic.replay.ages(lr.version, pos))
            np.add.at(hist, ks, 1)
            lr.optimizer.zero_grad(set_to_none=True)
            terms = np.stack([np.arange(len(pos)), ks], 1)                    # (n, 2): (row, k)
            for mb in lr._micro_batches(lr.ranks.share(terms)):
                loss, parts = self.loss(batch, pos[mb[:, 0]], mb[:, 1], k_steps)
                (loss * len(mb) / len(terms)).backward()
                sums += len(mb) * np.array([float(loss.detach()), parts["q"], parts["kl"], parts["reward"]])
            norm, ok = lr.clip_and_step()
            skipped += not ok
            if ok:
                norms.append(norm)
        n = self.cfg.optimizer_steps * self.cfg.batch_size
        loss_sum, q, kl, r = (float(v) / n for v in lr.ranks.sum(list(sums), lr.device))
        metrics.update({"sqdf/q": q, "sqdf/kl": kl, "sqdf/reward_hat": r,
                        "replay/size": float(len(self.critic.replay)),
                        "replay/age_mean": float(np.concatenate(ages).mean())})
        return Trained(loss_sum, float(np.mean(norms)) if norms else float("nan"), skipped, n,
                       hist.tolist(), metrics)

    def loss(self, batch, pos: np.ndarray, ks: np.ndarray, k_steps: int) -> tuple[torch.Tensor, dict]:
        """L over trajectories at buffer positions `pos` (n,), each at its step ks (n,)."""
        lr = self.learner
        rows = self.critic.rows(pos, lr.device)
        k = torch.from_numpy(ks)
        x_k = rows["latents"][torch.arange(len(pos)), k]                    # (n, C, H, W)
        cond = lr.conditioning(batch, rows, len(pos))
        out = lr.policy.step(x_k, k, rows["embeds"], cond["uncond"], generator=lr.generator,
                             pooled=cond["pooled"], uncond_pooled=cond["uncond_pooled"])   # μ_θ + σ z, with a gradient
        last = torch.from_numpy(ks == k_steps - 1).to(lr.device).view(-1, 1, 1, 1)
        k_next = torch.from_numpy(np.minimum(ks + 1, k_steps - 1))
        x0 = torch.where(last, out.prev_sample, lr.reference_x0(out.prev_sample, k_next, rows["embeds"], cond))
        mu_ref = lr.reference_mean(x_k, k, rows["embeds"], cond)
        r = self.critic.reward(x0, rows["embeds"], rows["prompts"])
        return sqdf_loss(r, out.mean, mu_ref, out.std.flatten(), k, k_steps, self.cfg.gamma, self.cfg.alpha)

    def state(self):
        return self.critic.state()

    def load_state(self, tensors, meta) -> None:
        self.critic.load_state(tensors, meta)

"""LaSRO as a learner algorithm (learner.algorithm = lasro; arXiv 2411.15247).

Few-step generation (K ≤ 2) fine-tuned by the gradient of the latent-space surrogate
reward, back-propagated through the whole chain:

    x_0 = a stored trajectory's starting noise x_T
    x_{k+1} = μ_θ(x_k, k) + σ_k z_k          k = 0 … K−1, every step with a gradient
    KL = Σ_k mean_d (μ_ref(x_k) − μ_θ(x_k))² / σ_k²     (μ_ref at the policy's own x_k)
    L = −mean_b (s(x_K, c) − α KL)                       (core/lasro.py)

The samplers keep exploring with the current policy (off-policy exploration: the
surrogate learns from everything in the replay buffer); the Serve reward trains the
surrogate (surrogate.py), the surrogate's gradient trains the generator. Ours, where
the abstract is silent: the chain starts from stored noise, the KL's form is SQDF's.
"""
from __future__ import annotations

import numpy as np
import torch

from ..core.lasro import lasro_loss
from .critic import Critic
from .sqdf import Trained


class Lasro:
    def __init__(self, learner, learner_cfg, rewards_cfg=None):
        self.learner, self.cfg = learner, learner_cfg.lasro
        self.replay_ratio = learner_cfg.replay.ratio
        self.critic = Critic(learner, learner_cfg, "surrogate")

    def train(self, batch, keep: np.ndarray, mask: np.ndarray) -> Trained:
        lr = self.learner
        fresh, metrics = self.critic.observe(batch, keep, lr.version)
        metrics.update(self.critic.fit(lr.rng))
        k_steps = mask.shape[1]
        if not self.critic.ready or len(fresh) == 0:
            return Trained(hist=[0] * k_steps, metrics=metrics)
        sums, norms, skipped = np.zeros(3), [], 0
        for _ in range(self.cfg.optimizer_steps):
            pos = self.critic.draw(fresh, self.cfg.batch_size, self.replay_ratio, lr.rng, lr.version)
            lr.optimizer.zero_grad(set_to_none=True)
            rows_all = np.stack([np.arange(len(pos)), np.zeros(len(pos), int)], 1)
            for mb in lr._micro_batches(lr.ranks.share(rows_all)):
                loss, r, kl = self.loss(batch, pos[mb[:, 0]], k_steps)
                (loss * len(mb) / len(pos)).backward()
                sums += len(mb) * np.array([float(loss.detach()), r, kl])
            norm, ok = lr.clip_and_step()
            skipped += not ok
            if ok:
                norms.append(norm)
        n = self.cfg.optimizer_steps * self.cfg.batch_size
        loss_sum, r, kl = (float(v) / n for v in lr.ranks.sum(list(sums), lr.device))
        metrics.update({"lasro/reward_hat": r, "lasro/kl": kl, "replay/size": float(len(self.critic.replay))})
        return Trained(loss_sum, float(np.mean(norms)) if norms else float("nan"), skipped, n * k_steps,
                       [n] * k_steps, metrics)

    def loss(self, batch, pos: np.ndarray, k_steps: int) -> tuple[torch.Tensor, float, float]:
        lr = self.learner
        rows = self.critic.rows(pos, lr.device)
        cond = lr.conditioning(batch, rows, len(pos))
        x = rows["latents"][:, 0]                                            # (n, C, H, W) x_T
        mus, refs, sigmas = [], [], []
        for k in range(k_steps):
            steps = torch.full((len(pos),), k)
            refs.append(lr.reference_mean(x, steps, rows["embeds"], cond))
            out = lr.policy.step(x, steps, rows["embeds"], cond["uncond"], generator=lr.generator,
                                 pooled=cond["pooled"], uncond_pooled=cond["uncond_pooled"])
            mus.append(out.mean)
            sigmas.append(out.std.flatten())
            x = out.prev_sample
        r = self.critic.reward(x, rows["embeds"], rows["prompts"])
        loss, parts = lasro_loss(r, mus, refs, sigmas, self.cfg.alpha)
        return loss, parts["reward"], parts["kl"]

    def state(self):
        return self.critic.state()

    def load_state(self, tensors, meta) -> None:
        self.critic.load_state(tensors, meta)

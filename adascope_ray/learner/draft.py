"""Direct reward backpropagation through the sampling chain, trained in the window
(learner.algorithm = draft; DRaFT arXiv 2309.17400, AlignProp arXiv 2310.03739; the
objective is core/lasro.py's).

A pathwise gradient: the reward's derivative flows back through the denoising chain,
so no score function (and none of its per-trajectory variance) enters the update.

    rows      trajectories of the fresh batch, each with its window's steps (k_s the first)
    x_{k_s}   the stored latent at the window's start (what the samplers drew up to there)
    x_{k+1} = μ(x_k, k) + σ_k z_k      k = k_s … K−1, z_k fresh noise, every step with a
              gradient to x; μ = μ_θ at the window's steps (a gradient to the weights too),
              μ with the weights detached at the others (the reward's gradient passes
              through those steps to the window's, and trains nothing there)
    r       = Σ_j w_j r_j(decode(x_K))           the run's rewards' differentiable forms
    KL      = Σ_{k in window} mean_d (μ_ref(x_k) − μ_θ(x_k))² / σ_k²   (alpha > 0 only)
    L       = −mean_b (r − α KL)

Each chain costs K − k_s guided denoiser passes with a gradient (and, with alpha > 0,
the reference's pass at each window step), all counted as learner rows, plus a VAE
decode and the reward. Ours, where the sources are silent: the chain starts at the
stored x_{k_s} and the weights train only inside the window.
"""
from __future__ import annotations

import copy

import numpy as np
import torch

from ..core.lasro import lasro_loss
from .critic import Critic
from .sqdf import Trained


class _Detached:
    """A denoiser called with its trainable weights detached: the output keeps its
    gradient to the inputs, none to those weights."""

    def __init__(self, module, params: dict[str, torch.nn.Parameter]):
        self.module, self.params = module, params
        self.config = module.config

    def __call__(self, *args, **kwargs):
        return torch.func.functional_call(self.module, {n: p.detach() for n, p in self.params.items()}, args, kwargs)


def detached_policy(policy, module):
    """A shallow copy of `policy` whose denoiser (DiffusionPolicy.unet / FlowPolicy.denoiser)
    runs with the trainable weights detached; its forward rows are counted on its own."""
    out = copy.copy(policy)
    trainable = {n: p for n, p in module.named_parameters() if p.requires_grad}
    setattr(out, "unet" if hasattr(policy, "unet") else "denoiser", _Detached(module, trainable))
    out.forward_rows = 0
    return out


def chain_groups(mask: np.ndarray, rows: np.ndarray) -> dict[tuple[int, ...], np.ndarray]:
    """rows (n,) of a (B, K) window mask -> {the selected steps: the rows that select
    exactly those}; a chain starts at the first and trains the weights at those steps
    only (rows that select none are left out)."""
    groups: dict[tuple[int, ...], list[int]] = {}
    for r in rows:
        ks = tuple(int(k) for k in np.flatnonzero(mask[r]))
        if ks:
            groups.setdefault(ks, []).append(int(r))
    return {s: np.asarray(v) for s, v in groups.items()}


class Draft:
    def __init__(self, learner, learner_cfg, rewards_cfg=None):
        self.learner, self.cfg = learner, learner_cfg.draft
        self.critic = Critic(learner, learner_cfg, "differentiable", rewards_cfg)

    def train(self, batch, keep: np.ndarray, mask: np.ndarray) -> Trained:
        lr = self.learner
        k_steps = mask.shape[1]
        hist = np.zeros(k_steps)
        rows = np.flatnonzero(keep & mask.any(1))
        if not len(rows):
            return Trained(hist=hist.tolist())
        frozen = detached_policy(lr.policy, lr.unet)
        sums, norms, skipped, n = np.zeros(3), [], 0, self.cfg.batch_size
        for _ in range(self.cfg.optimizer_steps):
            pick = rows[lr.rng.integers(len(rows), size=n)]                    # (n,) trajectories, with repeats
            lr.optimizer.zero_grad(set_to_none=True)
            for trained, sel in chain_groups(mask, pick).items():
                for mb in lr._micro_batches(lr.ranks.share(np.stack([sel, np.full(len(sel), trained[0])], 1))):
                    loss, r, kl = self.loss(batch, mb[:, 0], trained, k_steps, frozen)
                    (loss * len(mb) / n).backward()
                    sums += len(mb) * np.array([float(loss.detach()), r, kl])
                hist[list(trained)] += len(sel)
            norm, ok = lr.clip_and_step()
            skipped += not ok
            if ok:
                norms.append(norm)
        lr.policy.forward_rows += frozen.forward_rows
        total = self.cfg.optimizer_steps * n
        loss_sum, r, kl = (float(v) / total for v in lr.ranks.sum(list(sums), lr.device))
        return Trained(loss_sum, float(np.mean(norms)) if norms else float("nan"), skipped, int(hist.sum()),
                       hist.tolist(), {"draft/reward_hat": r, "draft/kl": kl})

    def loss(self, batch, rows: np.ndarray, trained: tuple[int, ...], k_steps: int, frozen) -> tuple[torch.Tensor, float, float]:
        """L of the chains of `rows` (n,), all training the weights at steps `trained`
        (ascending; the chain starts at the first); (L, mean r, mean KL)."""
        lr, k_s = self.learner, trained[0]
        i = torch.from_numpy(rows)
        embeds = batch.embeds[i]
        cond = lr.conditioning(batch, {"pooled": None if batch.pooled is None else batch.pooled[i]}, len(rows))
        x = batch.latent(i, torch.full((len(rows),), k_s))                   # (n, C, H, W) x_{k_s}
        mus, refs, sigmas = [], [], []
        for k in range(k_s, k_steps):
            steps = torch.full((len(rows),), k)
            inside = k in trained
            if inside and self.cfg.alpha > 0:
                refs.append(lr.reference_mean(x, steps, embeds, cond))
            out = (lr.policy if inside else frozen).step(x, steps, embeds, cond["uncond"], generator=lr.generator,
                                                         pooled=cond["pooled"], uncond_pooled=cond["uncond_pooled"])
            if inside and self.cfg.alpha > 0:
                mus.append(out.mean)
                sigmas.append(out.std.flatten().expand(len(rows)))
            x = out.prev_sample
        r = self.critic.reward(x, embeds, [batch.prompts[j] for j in rows])  # (n,) with a gradient
        loss, parts = lasro_loss(r, mus, refs, sigmas, self.cfg.alpha)
        return loss, parts["reward"], parts["kl"]

    def state(self):
        return {}, {}

    def load_state(self, tensors, meta) -> None:
        pass

"""The sampler: runs the diffusion pipeline as a stochastic policy (no ray).

`Sampler.sample(batch)` generates SDE trajectories with per-step log-probs, the
AdaScope signal traces and the final images, and returns a typed `Rollout`.
`cluster.actors` wraps this class in a Ray actor.
"""
from __future__ import annotations

import time

import numpy as np
import torch

from ..core import signals as sig
from ..models.loader import load_pipeline, load_trainable_state, make_trainable
from ..models.policy import denoiser_of, encode_prompts, make_policy, unconditional
from ..types import PromptBatch, Rollout, SignalTraces, WeightsUpdate


class Sampler:
    def __init__(self, model_cfg, sampling_cfg, sampler_cfg, pool: int = 8, semantic=None, embed=None,
                 reward_trace=None, score=None):
        """semantic: window.semantic (None: the latent C_k); with source 'embedding', `embed`
        maps (n, H, W, 3) uint8 images to (n, D) embeddings (a CLIP-family reward's).
        reward_trace: window.reward_trace; when enabled, `score(images, prompts)` returns
        the run's (n,) reward of decoded x̂0 images."""
        torch.set_num_threads(sampler_cfg.torch_threads)
        self.probe_every = semantic.probe_every if semantic is not None and semantic.source == "embedding" else None
        if self.probe_every and embed is None:
            raise ValueError(f"window.semantic.source=embedding: no image embedder was given for reward {semantic.reward!r}")
        self.reward_every = reward_trace.probe_every if reward_trace is not None and reward_trace.enabled else None
        if self.reward_every and score is None:
            raise ValueError("window.reward_trace.enabled: no reward was given to score the probed steps")
        self.embed, self.score = embed, score
        self.cfg = sampler_cfg
        self.pipe = load_pipeline(model_cfg)
        self.denoiser = denoiser_of(self.pipe)  # the UNet, or an SD3-class transformer
        make_trainable(self.denoiser, model_cfg)
        # names and shapes of what the learner trains: the layout weight updates fill
        self.trainable_layout = {n: tuple(p.shape) for n, p in self.denoiser.named_parameters() if p.requires_grad}
        self.denoiser.requires_grad_(False)
        self.policy = make_policy(self.pipe, self.denoiser, sampling_cfg, getattr(torch, model_cfg.dtype),
                                  model_cfg.adapter_steps)
        self.device = self.denoiser.device
        self.pool = pool
        self.initial_noise = sampling_cfg.initial_noise
        self.resolution = model_cfg.resolution
        self.version = -1  # no published weights yet
        self._uncond = None

    def set_weights(self, update: WeightsUpdate) -> int:
        """Load a published version. Versions only move forward: a repeated or older
        update is refused, so each version is loaded exactly once."""
        if update.version <= self.version:
            raise ValueError(f"sampler holds weights v{self.version}; refusing v{update.version} (not newer)")
        if set(update.state) != set(self.trainable_layout):
            raise KeyError(f"weights v{update.version} carry {len(update.state)} tensors, the sampler trains {len(self.trainable_layout)}")
        load_trainable_state(self.denoiser, update.state)
        self.version = update.version
        return self.version

    @torch.no_grad()
    def sample(self, batch: PromptBatch, deterministic: bool = False) -> Rollout:
        """deterministic: every step η = 0 (DDIM) or the flow ODE, for evaluation: the
        images then depend on the starting noise alone (no step is trainable)."""
        if batch.policy_version != self.version:
            raise RuntimeError(f"sampler holds weights v{self.version}, batch wants v{batch.policy_version}")
        t0 = time.perf_counter()
        k = len(self.policy.schedule.timesteps)
        window = _checked_window(batch.window, k)
        # a shared deterministic prefix needs a shared start: with a window, groups share x_T
        shared = (self.initial_noise == "per_group" and not batch.own_starts) or window
        starts = self._group_starts(batch) if shared else None
        n = self.cfg.batch_size
        parts = [self._sample_chunk(batch.prompts[i : i + n], batch.seed * 100_003 + i,
                                    x_start=None if starts is None else starts[i : i + n],
                                    window=window, group_ids=np.asarray(batch.group_ids)[i : i + n],
                                    deterministic=deterministic)
                 for i in range(0, len(batch.prompts), n)]
        cat = lambda key: np.concatenate([p[key] for p in parts])  # noqa: E731
        uncond = self._uncond_embeds()
        # a placed window: only x_start … x_end travel on, the latents its steps read and write
        kept = None if window is None or deterministic else np.arange(window[0], window[1] + 1)
        latents = cat("latents") if kept is None else cat("latents")[:, kept]  # (B, J, C, h, w)
        counters = {k: sum(int(p[k]) for p in parts) for k in ("probe_decodes", "probe_embeds", "probe_scores") if k in parts[0]}
        return Rollout(
            policy_version=self.version, prompts=list(batch.prompts),
            group_ids=np.asarray(batch.group_ids), step_indices=np.arange(k),
            timesteps=self.policy.schedule.timesteps.numpy(),
            latents=latents, latent_steps=kept, log_probs=cat("log_probs"), prompt_embeds=cat("embeds"),
            negative_embeds=None if uncond is None else uncond[0][:1].float().cpu().numpy(),
            pooled_embeds=cat("pooled") if "pooled" in parts[0] else None,
            negative_pooled=None if uncond is None or uncond[1] is None else uncond[1][:1].float().cpu().numpy(),
            signals=SignalTraces(cat("S"), cat("C"), cat("D"), cat("var_pooled"), cat("var_full"),
                                 reward=cat("R") if "R" in parts[0] else None),
            images=cat("images"), sampler_forward_rows=sum(int(p["rows"]) for p in parts),
            timings={"sample_s": time.perf_counter() - t0},
            counters={**counters, "latents_sent": int(latents.shape[0] * latents.shape[1])},
            stochastic=np.zeros(k, bool) if deterministic else
            None if window is None else (np.arange(k) >= window[0]) & (np.arange(k) < window[1]),
        )

    def _group_starts(self, batch: PromptBatch) -> torch.Tensor:
        """x_T (B, C, h, w) shared by the rows of each group: group g's from its own
        generator (seed, g), so it does not depend on how the batch is chunked."""
        side = self.resolution // self.pipe.vae_scale_factor
        shape = (self.denoiser.config.in_channels, side, side)
        gids = np.asarray(batch.group_ids)
        by_group = {int(g): torch.randn(shape, generator=torch.Generator("cpu").manual_seed(
            (batch.seed * 100_003 + 7_919 * int(g) + 1) % 2**63)) for g in np.unique(gids)}
        return torch.stack([by_group[int(g)] for g in gids])

    def _uncond_embeds(self) -> tuple[torch.Tensor, torch.Tensor | None] | None:
        """(embeds (1, L, D), pooled (1, P) or None) of the empty prompt, under CFG."""
        if not self.policy.uses_cfg:
            return None
        if self._uncond is None:
            self._uncond = unconditional(self.pipe)
        return self._uncond

    def _conditioning(self, prompts: list[str]):
        """(cond (b, L, D), uncond (b, L, D) | None, pooled (b, P) | None, uncond pooled | None)."""
        b = len(prompts)
        cond, pooled = encode_prompts(self.pipe, prompts)
        u = self._uncond_embeds()
        uncond = None if u is None else u[0].expand(b, -1, -1)
        uncond_pooled = None if u is None or u[1] is None else u[1].expand(b, -1)
        return cond, uncond, pooled, uncond_pooled

    @torch.no_grad()
    def continue_from(self, prompts: list[str], x_k: np.ndarray, k: int, seed: int) -> np.ndarray:
        """Finish trajectories from latents x_k (b, C, h, w) at step k with fresh noise:
        the final images (b, H, W, 3) uint8. Branching several continuations from one x_k
        shows how much of the outcome the actions from step k on can still change."""
        gen = torch.Generator("cpu").manual_seed(seed)
        cond, uncond, pooled, uncond_pooled = self._conditioning(prompts)
        x = torch.as_tensor(x_k, dtype=torch.float32).to(self.device)
        for j in range(k, len(self.policy.schedule.timesteps)):
            x = self.policy.step(x, torch.full((len(prompts),), j), cond, uncond, generator=gen,
                                 pooled=pooled, uncond_pooled=uncond_pooled).prev_sample
        return self._decode(x)

    @torch.no_grad()
    def trace(self, prompts: list[str], seed: int) -> dict[str, np.ndarray]:
        """One chunk as `sample` draws it, plus what the signals look at: the decoded
        prediction decode(x̂0_k) of every step, "step_images" (b, K, H, W, 3) uint8."""
        return self._sample_chunk(prompts, seed, decode_steps=True)

    def _sample_chunk(self, prompts: list[str], seed: int, decode_steps: bool = False,
                      x_start: torch.Tensor | None = None, window: tuple[int, int] | None = None,
                      group_ids: np.ndarray | None = None, deterministic: bool = False) -> dict[str, np.ndarray]:
        """x_start: (b, C, h, w) starting noise to use in place of the chunk's own draw.
        window (start, end): only steps start ≤ k < end draw noise; before start the rows
        of a group (group_ids, (b,)) share x_start and one deterministic prefix, computed
        once per group; from end on every row runs η = 0 (deterministic: every step)."""
        b = len(prompts)
        gen = torch.Generator("cpu").manual_seed(seed)
        cond, uncond, pooled, uncond_pooled = self._conditioning(prompts)
        side = self.resolution // self.pipe.vae_scale_factor
        x = torch.randn((b, self.denoiser.config.in_channels, side, side), generator=gen)  # drawn either way: same step noise
        x = (x if x_start is None else x_start.to(x.dtype)).to(self.device)
        x = x * getattr(self.pipe.scheduler, "init_noise_sigma", 1.0)
        rows0 = self.policy.forward_rows
        start, end = window or (0, 0 if deterministic else len(self.policy.schedule.timesteps))
        lead, row_of = None, None
        if start > 0:  # one row per group runs the shared prefix; its rows copy it
            _, lead, row_of = np.unique(group_ids, return_index=True, return_inverse=True)
        take = lambda t, rows: None if t is None else t[rows]  # noqa: E731
        latents, log_probs, x0s = [x], [], []
        for k in range(len(self.policy.schedule.timesteps)):
            if k < start:
                out = self.policy.step(x[lead], torch.full((len(lead),), k), cond[lead], take(uncond, lead),
                                       pooled=take(pooled, lead), uncond_pooled=take(uncond_pooled, lead),
                                       stochastic=False)
                x, lp, x0 = out.prev_sample[row_of], out.log_prob[row_of], out.x0_pred[row_of]
            else:
                out = self.policy.step(x, torch.full((b,), k), cond, uncond, generator=gen, pooled=pooled,
                                       uncond_pooled=uncond_pooled, stochastic=k < end)
                x, lp, x0 = out.prev_sample, out.log_prob, out.x0_pred
            latents.append(x)
            log_probs.append(lp)
            x0s.append(x0)
        x0 = torch.stack(x0s, 1).float()                                    # (b, K, C, H, W)
        final = x0[:, -1]
        images = self._decode(x)                                             # (b, H, W, 3)
        probe = _Probes(self._decode, x0)  # decode(x̂0_k), once per probed step
        semantic = self._semantic(probe, images, probe=not deterministic)  # an evaluation trains nothing
        if self.reward_every and not deterministic:
            semantic.update(self._reward_trace(probe, prompts))
        return {
            "latents": torch.stack(latents, 1).float().cpu().numpy(),     # (b, K+1, C, H, W)
            "log_probs": torch.stack(log_probs, 1).float().cpu().numpy(),  # (b, K)
            "embeds": cond.float().cpu().numpy(),
            **({} if pooled is None else {"pooled": pooled.float().cpu().numpy()}),
            "S": sig.structural_trace(x0, self.pool).cpu().numpy(),
            "C": semantic.pop("C"),
            **semantic,
            "D": sig.convergence_trace(x0).cpu().numpy(),
            "var_pooled": sig.avg_pool(final, self.pool).flatten(1).var(1).cpu().numpy(),
            "var_full": final.flatten(1).var(1).cpu().numpy(),
            "images": images,
            "rows": np.asarray(self.policy.forward_rows - rows0),
            **({"step_images": np.stack([self._decode(x0[:, k]) for k in range(x0.shape[1])], 1)}
               if decode_steps else {}),
        }

    def _reward_trace(self, probe: "_Probes", prompts: list[str]) -> dict:
        """R_k (b, K): the run's reward of decode(x̂0_k) at the probed steps, held between them."""
        b, k = probe.x0.shape[:2]
        steps = sig.probe_steps(k, self.reward_every)
        images = probe.images(steps)                                         # (b, P, H, W, 3)
        flat = images.reshape(-1, *images.shape[2:])                         # (b·P, H, W, 3), sample-major
        scores = np.asarray(self.score(flat, [p for p in prompts for _ in steps]), dtype=np.float64)
        r = sig.held(torch.as_tensor(scores).reshape(b, len(steps)), steps, k)
        return {"R": r.float().numpy(), "probe_scores": np.asarray(b * len(steps)),
                "probe_decodes": np.asarray(probe.decodes)}

    def _semantic(self, probes: "_Probes", images: np.ndarray, probe: bool = True) -> dict:
        """C_k (b, K) and the passes it cost: from the latents, or (window.semantic.source =
        embedding) the cosine of the embedder's e(decode(x̂0_k)) at the probed steps against
        e(final image), one VAE decode and one embedder pass per sample and probe, plus one
        embedder pass per sample for the final image."""
        x0 = probes.x0
        if not (self.probe_every and probe):
            return {"C": sig.semantic_trace_fallback(x0).cpu().numpy()}
        b, k = x0.shape[:2]
        steps = sig.probe_steps(k, self.probe_every)
        decoded = probes.images(steps).reshape(b * len(steps), *images.shape[1:])  # (b·P, H, W, 3)
        emb = torch.as_tensor(np.asarray(self.embed(np.concatenate([decoded, images]))), dtype=torch.float32)
        probe_emb, final_emb = emb[: b * len(steps)].reshape(b, len(steps), -1), emb[b * len(steps):]
        return {"C": sig.semantic_trace_embedding(probe_emb, final_emb, steps, k).cpu().numpy(),
                "probe_decodes": np.asarray(probes.decodes), "probe_embeds": np.asarray(b * (len(steps) + 1))}

    def _decode(self, latents: torch.Tensor) -> np.ndarray:
        vae = self.pipe.vae
        shift = getattr(vae.config, "shift_factor", None) or 0.0                  # SD3's VAE has one
        img = vae.decode((latents / vae.config.scaling_factor + shift).to(vae.dtype)).sample  # (b, 3, H, W) in [-1, 1]
        img = ((img.float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
        return img.permute(0, 2, 3, 1).cpu().numpy()                         # (b, H, W, 3)


class _Probes:
    """decode(x̂0_k) of a chunk's probed steps, each step decoded at most once (the
    semantic and reward traces share them); `decodes` counts the VAE passes per sample."""

    def __init__(self, decode, x0: torch.Tensor):
        self.decode, self.x0 = decode, x0                                    # x0: (b, K, C, h, w)
        self.cache: dict[int, np.ndarray] = {}

    @property
    def decodes(self) -> int:
        return self.x0.shape[0] * len(self.cache)

    def images(self, steps: list[int]) -> np.ndarray:
        """(b, P, H, W, 3) uint8 for the P given steps."""
        new = [k for k in steps if k not in self.cache]
        if new:
            b = self.x0.shape[0]
            out = self.decode(self.x0[:, new].flatten(0, 1))                 # (b·n, H, W, 3), sample-major
            out = out.reshape(b, len(new), *out.shape[1:])
            self.cache.update({k: out[:, j] for j, k in enumerate(new)})
        return np.stack([self.cache[k] for k in steps], 1)


def _checked_window(window: tuple[int, int] | None, k: int) -> tuple[int, int] | None:
    if window is None:
        return None
    start, end = int(window[0]), int(window[1])
    if not 0 <= start < end <= k:
        raise ValueError(f"batch.window {tuple(window)}: need 0 <= start < end <= {k} (sampling.num_steps)")
    return start, end

"""The learner: advantages, the timestep window, the clipped update (no ray).

`Learner.update(iteration, scored_rollouts)` runs, in order:
  1. collate     — concatenate rollouts, drop samples older than max_staleness
  2. advantages  — per-prompt normalised rewards; zero-spread groups dropped
  3. window      — which steps enter the update (core.window, docs/adascope.md); with
                   window.placement = sampler the steps the sampler ran stochastically,
                   and the selection becomes the window of the next rollouts
  4. update      — clipped policy-gradient loss on exactly the selected pairs (plus
                   β · KL to the reference there when learner.kl.beta > 0); a sample
                   older than the learner's weights (max_staleness ≥ 1) enters in the
                   decoupled form: its proximal log-probs recomputed first (core.loss)
and bumps the weights version. `publish()` returns the new weights as numpy.
"""
from __future__ import annotations

import copy
import time
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import torch

from ..core import signals as sig
from ..core.advantages import Advantages, PerPromptStatTracker, each_part_advantages, group_advantages
from ..core.loss import clipped_pg_loss, kl_to_reference
from ..core.window import STRATEGIES, WindowInputs, WindowSelection, select_window
from ..models.adapter_gate import adapters_off
from ..models.loader import load_pipeline, make_trainable, trainable_state
from ..models.policy import denoiser_name, denoiser_of, make_policy
from ..types import LearnerState, ScoredRollout, UpdateStats, WeightsUpdate
from .draft import Draft
from .lasro import Lasro
from .optim_state import load_optimizer, optimizer_tensors
from .raft import Raft
from .ranks import Ranks, join
from .sharding import assign, full, lockstep, shard_denoiser
from .sqdf import Sqdf, Trained

ALGORITHMS = {"sqdf": Sqdf, "lasro": Lasro, "raft": Raft, "draft": Draft}  # learner.algorithm; ppo is the clipped update below


@dataclass
class Batch:
    """Rollouts concatenated along B (torch tensors on the learner's device)."""
    prompts: list[str]
    group_ids: np.ndarray          # (B,)
    rewards: np.ndarray            # (B,)
    components: dict[str, np.ndarray]
    latents: torch.Tensor          # (B, J, C, H, W): x_k for k = latent_steps[j]
    log_probs: torch.Tensor        # (B, K)
    embeds: torch.Tensor           # (B, L, D)
    negative: torch.Tensor | None  # (1, L, D)
    pooled: torch.Tensor | None    # (B, P) SD3-class pooled text, else None
    negative_pooled: torch.Tensor | None  # (1, P)
    structural: np.ndarray         # (B, K)
    semantic: np.ndarray
    convergence: np.ndarray        # (B, K); D_0 = +inf by definition
    var_pooled: np.ndarray         # (B,) the prior's s² estimates, per sample
    var_full: np.ndarray           # (B,)
    alpha_bars: torch.Tensor       # (K,)
    stochastic: np.ndarray         # (B, K) bool: steps sampled with noise (others η = 0, never trained)
    staleness: np.ndarray          # (B,) int: the learner's version − the version that sampled it
    reward_trace: np.ndarray | None = None  # (B, K) R_k, the reward of decode(x̂0_k), when the samplers probe it
    latent_steps: np.ndarray | None = None  # (J,) int, consecutive: the k of each latents column; None = 0 … K

    def latent(self, i: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
        """x_k of samples i at steps k (both (N,)): (N, C, H, W). Refuses a step the
        samplers did not send (window.placement = sampler sends x_start … x_end only)."""
        if self.latent_steps is None:
            return self.latents[i, k]
        col = k - int(self.latent_steps[0])
        sent = (col >= 0) & (col < len(self.latent_steps))
        if not bool(sent.all()):
            raise IndexError(f"x_k for k = {sorted(set(k[~sent].tolist()))} was not sent (the rollouts carry steps {self.latent_steps.tolist()})")
        return self.latents[i, col]


def collate(scored: list[ScoredRollout], device: torch.device, schedule, version: int | None = None) -> Batch:
    rs = [s.rollout for s in scored]
    cat = lambda xs: np.concatenate(xs)  # noqa: E731
    neg = rs[0].negative_embeds
    # group ids are only unique within one rollout: offset them per rollout
    gids, offset = [], 0
    for r in rs:
        g = np.unique(r.group_ids, return_inverse=True)[1]
        gids.append(g + offset)
        offset += g.max() + 1 if len(g) else 0
    names = scored[0].rewards.components.keys()
    sent = {None if r.latent_steps is None else tuple(r.latent_steps.tolist()) for r in rs}
    if len(sent) > 1:
        raise ValueError(f"rollouts of one update carry different latent steps {sorted(sent, key=str)}: one window per update")
    return Batch(
        prompts=[p for r in rs for p in r.prompts], group_ids=cat(gids),
        rewards=cat([s.rewards.total for s in scored]).astype(np.float64),
        components={n: cat([s.rewards.components[n] for s in scored]) for n in names},
        latents=torch.from_numpy(cat([r.latents for r in rs])).to(device),
        log_probs=torch.from_numpy(cat([r.log_probs for r in rs])).to(device),
        embeds=torch.from_numpy(cat([r.prompt_embeds for r in rs])).to(device),
        negative=None if neg is None else torch.tensor(neg, device=device),
        pooled=None if rs[0].pooled_embeds is None else torch.from_numpy(cat([r.pooled_embeds for r in rs])).to(device),
        negative_pooled=None if rs[0].negative_pooled is None else torch.tensor(rs[0].negative_pooled, device=device),
        structural=cat([r.signals.structural for r in rs]),
        semantic=cat([r.signals.semantic for r in rs]),
        convergence=cat([r.signals.convergence for r in rs]),
        var_pooled=cat([r.signals.var_pooled for r in rs]),
        var_full=cat([r.signals.var_full for r in rs]),
        alpha_bars=schedule.alpha_bars,
        stochastic=np.concatenate([np.ones((r.batch_size, r.log_probs.shape[1]), bool) if r.stochastic is None
                                   else np.broadcast_to(r.stochastic, (r.batch_size, len(r.stochastic))) for r in rs]),
        staleness=np.concatenate([np.full(r.batch_size, 0 if version is None else version - r.policy_version, np.int64) for r in rs]),
        reward_trace=cat([r.signals.reward for r in rs]) if all(r.signals.reward is not None for r in rs) else None,
        latent_steps=rs[0].latent_steps,
    )


def finite_samples(batch: Batch) -> np.ndarray:
    """(B,) bool: the sample's reward, stored log-probs, latents, window signals and
    prior statistics are all finite (D_0 = +inf is part of the signal, NaN is not)."""
    ok = np.isfinite(batch.rewards)
    ok &= torch.isfinite(batch.log_probs).all(1).cpu().numpy()
    ok &= torch.isfinite(batch.latents).flatten(1).all(1).cpu().numpy()
    ok &= np.isfinite(batch.structural).all(1) & np.isfinite(batch.semantic).all(1)
    ok &= ~np.isnan(batch.convergence).any(1) & np.isfinite(batch.convergence[:, 1:]).all(1)
    ok &= np.isfinite(batch.var_pooled) & np.isfinite(batch.var_full)
    if batch.reward_trace is not None:
        ok &= np.isfinite(batch.reward_trace).all(1)
    return ok


class Learner:
    def __init__(self, model_cfg, sampling_cfg, learner_cfg, window_cfg, advantage_cfg, rewards_cfg=None):
        torch.set_num_threads(learner_cfg.torch_threads)
        self.cfg, self.window_cfg, self.adv_cfg = learner_cfg, window_cfg, advantage_cfg
        self.rewards_cfg = rewards_cfg
        pipe = load_pipeline(model_cfg)
        self.unet = denoiser_of(pipe)  # the denoiser: a UNet, or an SD3-class transformer
        self.denoiser_name = denoiser_name(pipe)
        self.trainable = model_cfg.trainable
        torch.manual_seed(learner_cfg.seed)  # LoRA's random init (A matrices) is reproducible
        self.params = make_trainable(self.unet, model_cfg)
        self.unet.train()
        self.policy = make_policy(pipe, self.unet, sampling_cfg, getattr(torch, model_cfg.dtype), model_cfg.adapter_steps)
        # the KL term's reference: the LoRA model with its adapters off, or a frozen copy
        # of the denoiser before full fine-tuning changes it
        self.ref_policy = None
        if (learner_cfg.kl.beta > 0 or learner_cfg.algorithm in ("sqdf", "lasro")) and self.trainable == "full":
            ref = copy.deepcopy(self.unet).requires_grad_(False).eval()
            self.ref_policy = make_policy(pipe, ref, sampling_cfg, getattr(torch, model_cfg.dtype))
        if model_cfg.gradient_checkpointing:
            self.unet.enable_gradient_checkpointing()
        self.device = self.unet.device
        # sqdf with differentiable rewards decodes x̂0; otherwise the learner needs only
        # the denoiser and the schedule
        differentiable = (learner_cfg.algorithm == "sqdf" and learner_cfg.sqdf.reward == "differentiable") \
            or learner_cfg.algorithm == "draft"
        self.vae = pipe.vae.requires_grad_(False) if differentiable else None
        del pipe
        self.optimizer = self._optimizer()
        self.tracker = PerPromptStatTracker(advantage_cfg.tracker_buffer, advantage_cfg.tracker_min_count)
        self.rng = np.random.default_rng(learner_cfg.seed)
        self.version = 0
        self.ranks = Ranks()  # one rank unless join_group is called (learner.group)
        self.sharded = False  # learner.group.sharding=fsdp, once the group has formed (sharding.py)
        self.next_window: tuple[int, int] | None = None  # window.placement = sampler: what the next rollouts sample
        self.generator = torch.Generator().manual_seed(learner_cfg.seed)  # sqdf/lasro's reparameterised noise z
        self.algorithm = None if learner_cfg.algorithm == "ppo" else \
            ALGORITHMS[learner_cfg.algorithm](self, learner_cfg, rewards_cfg)  # learner/sqdf.py, lasro.py, raft.py, draft.py

    # ---- the phases of one update -------------------------------------------------
    def update(self, iteration: int, scored: list[ScoredRollout]) -> UpdateStats:
        timings: dict[str, float] = {}
        t = time.perf_counter()
        fresh = [s for s in scored if self.version - s.rollout.policy_version <= self.cfg.max_staleness]
        dropped = sum(s.rollout.batch_size for s in scored) - sum(s.rollout.batch_size for s in fresh)
        if not fresh:
            raise RuntimeError(f"every rollout is older than max_staleness={self.cfg.max_staleness}")
        batch = collate(fresh, self.device, self.policy.schedule, self.version)
        timings["collate_s"] = time.perf_counter() - t

        t = time.perf_counter()
        finite = finite_samples(batch)  # NaN/inf samples never reach the statistics or the update
        adv = self.advantages(batch, keep=finite)
        timings["advantages_s"] = time.perf_counter() - t

        t = time.perf_counter()
        selected, k_lo, k_hi = self.window(iteration, batch, keep=finite)
        placed = not batch.stochastic.all()  # the sampler placed a window: its noisy steps are the ones to train
        window = WindowSelection(batch.stochastic & finite[:, None]) if placed else selected
        masks = [window.mask & adv.valid[:, None]]
        if not placed and STRATEGIES[self.window_cfg.strategy].redraw_each_pass:  # DDPO: a new subset every pass
            masks += [self.window(iteration, batch, keep=finite)[0].mask & adv.valid[:, None]
                      for _ in range(self.cfg.inner_epochs - 1)]
        if self.window_cfg.placement == "sampler":
            self.next_window = _span(selected.mask) or self.next_window
        mask = masks[0]
        timings["window_s"] = time.perf_counter() - t

        rows0 = self.policy.forward_rows
        if self.algorithm is not None:  # sqdf / lasro / raft: their own update (their modules)
            t = time.perf_counter()
            trained = self.algorithm.train(batch, finite, window.mask)
            timings["update_s"] = time.perf_counter() - t
            stats, off_policy = {"approx_kl": 0.0, "clipfrac": 0.0}, {}
        else:
            t = time.perf_counter()
            stale = self.cfg.off_policy.correction == "decoupled" and bool((batch.staleness > 0).any())
            proximal = self.proximal_log_probs(batch, np.any(masks, axis=0)) if stale else None
            timings["proximal_s"] = time.perf_counter() - t

            t = time.perf_counter()
            loss, stats, grad_norm, skipped, off_policy = self.train_on(batch, masks, torch.from_numpy(adv.values).to(self.device),
                                                                        proximal)
            timings["update_s"] = time.perf_counter() - t
            trained = Trained(loss, grad_norm, skipped, int(mask.sum()), _per_step_counts(masks))
        self.version += 1

        sel = window.mask[adv.valid] if adv.valid.any() else window.mask
        kept = batch.rewards[finite]
        return UpdateStats(
            policy_version=self.version, reward_mean=float(kept.mean()) if len(kept) else float("nan"),
            reward_std=float(kept.std()) if len(kept) else float("nan"),
            reward_components={n: _nanmean(v[finite]) for n, v in batch.components.items()},
            zero_std_ratio=float(1.0 - adv.valid[finite].mean()) if finite.any() else 0.0, dropped_stale=int(dropped),
            window_start_mean=float(WindowSelection(sel).start.mean()),
            window_length_mean=float(WindowSelection(sel).length.mean()),
            window_hist=trained.hist, trained_pairs=trained.pairs,
            learner_forward_rows=self.policy.forward_rows - rows0, loss=trained.loss,
            approx_kl=stats["approx_kl"], clipfrac=stats["clipfrac"], grad_norm=trained.grad_norm,
            k_lo=k_lo, k_hi=k_hi, samples=sum(s.rollout.batch_size for s in scored),
            sampler_forward_rows=sum(s.rollout.sampler_forward_rows for s in scored),
            rollout_timings={k: max(s.rollout.timings.get(k, 0.0) for s in scored)
                             for k in scored[0].rollout.timings},
            rollout_counters={k: sum(s.rollout.counters.get(k, 0) for s in scored) for k in scored[0].rollout.counters},
            timings=timings, dropped_nonfinite=int((~finite).sum()), skipped_steps=trained.skipped,
            loss_terms={k: stats[k] for k in ("kl_ref",) if k in stats}, next_window=self.next_window,
            off_policy={"staleness_mean": float(batch.staleness.mean()), **off_policy},
            algorithm=trained.metrics,
        )

    def advantages(self, batch: Batch, keep: np.ndarray | None = None) -> Advantages:
        """Advantages of the kept samples (statistics over those only); others invalid."""
        a = self.adv_cfg
        idx = np.arange(len(batch.rewards)) if keep is None else np.flatnonzero(keep)
        if a.mode == "tracker":
            sub = self.tracker.update([batch.prompts[i] for i in idx], batch.rewards[idx], std_eps=a.std_eps, clip=a.clip)
        elif a.normalise == "each_part":
            parts = [(w, r[idx]) for w, r in self._reward_parts(batch.components)]
            sub = each_part_advantages(parts, batch.group_ids[idx], std_eps=a.std_eps, clip=a.clip)
        else:
            sub = group_advantages(batch.rewards[idx], batch.group_ids[idx], std_eps=a.std_eps, clip=a.clip)
        values, valid = np.zeros(len(batch.rewards), np.float32), np.zeros(len(batch.rewards), bool)
        values[idx], valid[idx] = sub.values, sub.valid
        return Advantages(values, valid)

    def _reward_parts(self, components: dict[str, np.ndarray]) -> list[tuple[float, np.ndarray]]:
        """(w_p, r_p) for advantage.normalise=each_part: each weighted reward's checks
        ("<name>/<check>") sharing its weight, or the reward itself when it has none."""
        if self.rewards_cfg is None:
            raise ValueError("advantage.normalise=each_part needs the rewards config (Learner(..., rewards_cfg))")
        parts = []
        for c in self.rewards_cfg.components:
            checks = [k for k in components if k.startswith(c.name + "/")] or [c.name]
            parts += [(c.weight / len(checks), components[k]) for k in checks] if c.weight else []
        return parts

    def window(self, iteration: int, batch: Batch, keep: np.ndarray | None = None
               ) -> tuple[WindowSelection, int, int]:
        """The window of the kept samples (signals and the prior's statistics over those
        only); samples not kept get an empty row."""
        b, k = batch.log_probs.shape
        idx = np.arange(b) if keep is None else np.flatnonzero(keep)
        mask = np.zeros((b, k), dtype=bool)
        if len(idx) == 0:
            return WindowSelection(mask), k, k
        k_lo, k_hi = sig.prior_bounds(batch.alpha_bars, float(batch.var_pooled[idx].mean()),
                                      float(batch.var_full[idx].mean()), self.window_cfg.pool,
                                      self.window_cfg.prior_lo, self.window_cfg.prior_hi)
        w = self.window_cfg
        sel = select_window(w.strategy, w.settings, WindowInputs(
            len(idx), k, iteration, self.rng, structural=batch.structural[idx], semantic=batch.semantic[idx],
            convergence=batch.convergence[idx], group_ids=batch.group_ids[idx], k_lo=k_lo, k_hi=k_hi,
            reward_trace=None if batch.reward_trace is None else batch.reward_trace[idx]))
        mask[idx] = sel.mask
        return WindowSelection(mask), k_lo, k_hi

    def train_on(self, batch: Batch, masks: list[np.ndarray], adv: torch.Tensor, proximal: torch.Tensor | None = None
                 ) -> tuple[float, dict, float, int, dict[str, float]]:
        """Clipped PG update on the (sample, step) pairs where a (B, K) mask is True:
        pass e of the inner epochs uses masks[e % len(masks)]. The gradient of each
        optimizer step is that of the mean loss over its pairs; in a learner group each
        rank differentiates its share of them and the gradients are summed (ranks.py).
        With `proximal` ((B, K) log π_prox, see proximal_log_probs) the pairs enter in
        the decoupled form (learner.off_policy); the last value returned is its
        importance-weight statistics (empty without it)."""
        passes = [np.argwhere(masks[e % len(masks)]) for e in range(self.cfg.inner_epochs)]  # each (N, 2): (i, k)
        n = sum(len(p) for p in passes)
        if n == 0:
            return 0.0, {"approx_kl": 0.0, "clipfrac": 0.0}, 0.0, 0, {}
        beta = self.cfg.kl.beta
        behaviour = batch.log_probs  # (B, K) log π_b, as the samplers stored them
        decoupled = proximal is not None
        old = proximal if decoupled else behaviour  # (B, K)
        cap = self.cfg.off_policy.is_cap
        # weighted sums over this rank's pairs: loss, approx_kl, clipfrac, kl_ref, w, capped
        sums, w_max, norms, skipped = np.zeros(6), -np.inf, [], 0
        for pairs in passes:
            if len(pairs) == 0:
                continue
            order = pairs[self.rng.permutation(len(pairs))]
            for chunk in np.array_split(order, min(self.cfg.optimizer_steps_per_epoch, len(order))):
                self.optimizer.zero_grad(set_to_none=True)
                for mb, real in self._shares(chunk):
                    out = self.step_outputs(batch, mb)
                    i, k = torch.from_numpy(mb[:, 0]), torch.from_numpy(mb[:, 1])
                    loss, st = clipped_pg_loss(out.log_prob, old[i, k], adv[i], self.cfg.clip_range,
                                               behaviour[i, k] if decoupled else None, cap)
                    kl_ref = 0.0
                    if beta > 0:
                        kl = kl_to_reference(out.mean, self.reference_means(batch, mb), out.std).mean()
                        loss = loss + beta * kl
                        kl_ref = float(kl.detach())
                    (loss * (len(mb) / len(chunk) if real else 0.0)).backward()
                    if real:
                        sums += len(mb) * np.array([float(loss.detach()), st.approx_kl, st.clipfrac, kl_ref,
                                                    st.is_weight_mean, st.is_capped])
                        w_max = max(w_max, st.is_weight_max)
                norm, stepped = self.clip_and_step()  # never steps with a non-finite gradient
                if stepped:
                    norms.append(norm)
                skipped += not stepped
        loss_sum, kl_sum, clip_sum, ref_sum, w_sum, capped_sum = self.ranks.sum(list(sums), self.device)
        stats = {"approx_kl": kl_sum / n, "clipfrac": clip_sum / n}
        if beta > 0:
            stats["kl_ref"] = ref_sum / n
        off = {} if not decoupled else {"is_weight_mean": w_sum / n, "is_weight_max": self.ranks.max(w_max, self.device),
                                        "is_capped": capped_sum / n}
        return loss_sum / n, stats, float(np.mean(norms)) if norms else float("nan"), skipped, off

    @torch.no_grad()
    def proximal_log_probs(self, batch: Batch, used: np.ndarray) -> torch.Tensor:
        """(B, K) log π_prox: the learner's weights before this update, recomputed at the
        stale samples' pairs the update uses (`used`, (B, K) bool; each rank its share);
        the behaviour log-probs elsewhere (a fresh sample's behaviour policy is π_prox)."""
        redo = used & (batch.staleness > 0)[:, None]  # (B, K)
        values = torch.zeros_like(batch.log_probs)
        for mb, real in self._shares(np.argwhere(redo)):  # each (n, 2): (i, k)
            lp = self.log_probs(batch, mb)
            if real:
                values[torch.from_numpy(mb[:, 0]), torch.from_numpy(mb[:, 1])] = lp
        return torch.where(torch.from_numpy(redo).to(self.device), self.ranks.sum_tensor(values), batch.log_probs)

    def _shares(self, pairs: np.ndarray) -> list[tuple[np.ndarray, bool]]:
        """This rank's micro-batches of (N, 2) pairs, each with whether it is real; a
        sharded group pads every rank to the same count (sharding.lockstep)."""
        if self.sharded:
            return lockstep(pairs, self.ranks.rank, self.ranks.world, self.cfg.micro_batch_size)
        return [(mb, True) for mb in self._micro_batches(self.ranks.share(pairs))]

    def _micro_batches(self, pairs: np.ndarray) -> list[np.ndarray]:
        """(N, 2) pairs in about-equal parts of at most micro_batch_size; none when N = 0."""
        return np.array_split(pairs, -(-len(pairs) // self.cfg.micro_batch_size)) if len(pairs) else []

    def log_probs(self, batch: Batch, pairs: np.ndarray) -> torch.Tensor:
        """log π_θ(x_{k+1} | x_k) recomputed for (i, k) pairs: (N,)."""
        return self.step_outputs(batch, pairs).log_prob

    def step_outputs(self, batch: Batch, pairs: np.ndarray, policy=None):
        """The stochastic step at (i, k) pairs, scoring the stored x_{k+1}: a StepOutput
        (log-prob (N,), mean μ and σ_k) of `policy` (the trained one by default)."""
        i, k = torch.from_numpy(pairs[:, 0]), torch.from_numpy(pairs[:, 1])
        x_t, x_next = batch.latent(i, k), batch.latent(i, k + 1)
        neg = None if batch.negative is None else batch.negative.expand(len(pairs), -1, -1)
        pooled = None if batch.pooled is None else batch.pooled[i]
        neg_pooled = None if batch.negative_pooled is None else batch.negative_pooled.expand(len(pairs), -1)
        return (policy or self.policy).step(x_t, k, batch.embeds[i], neg, prev_sample=x_next,
                                            pooled=pooled, uncond_pooled=neg_pooled)

    @torch.no_grad()
    def reference_means(self, batch: Batch, pairs: np.ndarray) -> torch.Tensor:
        """μ_ref at the (i, k) pairs: (N, C, H, W), the model before training."""
        if self.ref_policy is not None:
            out = self.step_outputs(batch, pairs, self.ref_policy)
            self.policy.forward_rows += self.ref_policy.forward_rows  # the reference's passes are learner cost
            self.ref_policy.forward_rows = 0
            return out.mean
        with adapters_off(self.unet):
            return self.step_outputs(batch, pairs).mean

    # ---- what the gradient-based algorithms (sqdf, lasro) call -------------------
    def clip_and_step(self) -> tuple[float, bool]:
        """All-reduce, clip and apply the accumulated gradient; (its norm, stepped). A
        non-finite gradient is dropped, never stepped with."""
        if not self.sharded:  # a sharded backward has already summed each rank's slice
            self.ranks.all_reduce_grads(self.params)
        norm = float(full(torch.nn.utils.clip_grad_norm_(self.params, self.cfg.max_grad_norm)))
        if not np.isfinite(norm):
            self.optimizer.zero_grad(set_to_none=True)
            return norm, False
        self.optimizer.step()
        return norm, True

    def conditioning(self, batch: Batch, rows: dict, n: int) -> dict:
        """The guidance's unconditional text and the pooled text of n stored rows."""
        return {"uncond": None if batch.negative is None else batch.negative.expand(n, -1, -1),
                "pooled": rows["pooled"],
                "uncond_pooled": None if batch.negative_pooled is None else batch.negative_pooled.expand(n, -1)}

    @contextmanager
    def reference(self):
        """The frozen reference policy (the model before training): the LoRA model with its
        adapters off, or the frozen copy of a fully fine-tuned denoiser. Gradients still
        flow to its inputs; its passes are counted as the learner's."""
        if self.ref_policy is not None:
            rows = self.ref_policy.forward_rows
            try:
                yield self.ref_policy
            finally:
                self.policy.forward_rows += self.ref_policy.forward_rows - rows
            return
        with adapters_off(self.unet):
            yield self.policy

    @torch.no_grad()
    def reference_mean(self, x: torch.Tensor, steps: torch.Tensor, embeds: torch.Tensor, cond: dict) -> torch.Tensor:
        """μ_ref(x_k, k): (n, C, H, W)."""
        with self.reference() as ref:
            return ref.step(x, steps, embeds, cond["uncond"], prev_sample=x, pooled=cond["pooled"],
                            uncond_pooled=cond["uncond_pooled"]).mean

    def reference_x0(self, x: torch.Tensor, steps: torch.Tensor, embeds: torch.Tensor, cond: dict) -> torch.Tensor:
        """The reference's Tweedie estimate x̂0(x_k) at step indices `steps`, with a
        gradient to x (n, C, H, W): √ᾱ x − √(1−ᾱ) v̂ (v), (x − √(1−ᾱ) ε̂)/√ᾱ (ε), x − σ v̂ (flow)."""
        from ..core.sde import to_x0
        from ..models.policy import FlowPolicy

        s = self.policy.schedule
        idx = steps.cpu()
        with self.reference() as ref:
            if isinstance(ref, FlowPolicy):
                sigma = s.sigmas[idx].to(x.device).view(-1, 1, 1, 1)
                v = ref.predict_velocity(x, s.timesteps[idx].to(x.device), embeds, cond["uncond"], cond["pooled"],
                                         cond["uncond_pooled"])
                return x - sigma * v
            out = ref.predict(x, s.timesteps[idx].to(x.device), embeds, cond["uncond"], cond["pooled"], cond["uncond_pooled"])
            return to_x0(out, x, s.alpha_bars[idx].to(x.device), ref.prediction_type)

    def reference_features(self, x0: torch.Tensor, embeds: torch.Tensor) -> torch.Tensor:
        """φ(x0, c) (n, 2C'): the mean and std over space of the reference UNet's mid-block
        activations at the schedule's least noisy timestep (learner/surrogate.py), with a
        gradient to x0; one conditional pass, counted."""
        with self.reference() as ref:
            unet = ref.unet if hasattr(ref, "unet") else None
            if unet is None or getattr(unet, "mid_block", None) is None:
                raise ValueError("the latent surrogate reads a UNet's mid-block: this backbone has none "
                                 "(use learner.algorithm=ppo, or sqdf with learner.sqdf.reward=differentiable)")
            got = {}
            hook = unet.mid_block.register_forward_hook(lambda mod, args, out: got.__setitem__("h", out))
            try:
                t = self.policy.schedule.timesteps[-1].to(x0.device).expand(len(x0))
                unet(x0.to(ref.dtype), t, encoder_hidden_states=embeds.to(ref.dtype))
            finally:
                hook.remove()
            ref.forward_rows += len(x0)
        h = got["h"].float()                                                 # (n, C', h', w')
        return torch.cat([h.mean((2, 3)), h.std((2, 3))], dim=1)

    def decode(self, x0: torch.Tensor) -> torch.Tensor:
        """The VAE's image of clean latents, (n, 3, H, W) in [0, 1], with a gradient."""
        vae = self.vae
        shift = getattr(vae.config, "shift_factor", None) or 0.0
        img = vae.decode((x0 / vae.config.scaling_factor + shift).to(vae.dtype)).sample.float()
        return ((img.clamp(-1, 1) + 1) / 2)

    def join_group(self, rank: int, world: int, address: str, port: int, backend: str, timeout_s: float) -> None:
        """Become rank `rank` of a data-parallel learner group of `world` (ranks.py)."""
        self.ranks = join(rank, world, address, port, backend, timeout_s)
        if self.cfg.group.sharding == "fsdp" and world > 1:
            shard_denoiser(self.unet)  # the parameters become this rank's shards: a new optimizer over them
            self.params = [p for p in self.unet.parameters() if p.requires_grad]
            self.optimizer = self._optimizer()
            self.sharded = True

    def _optimizer(self) -> torch.optim.AdamW:
        c = self.cfg
        return torch.optim.AdamW(self.params, lr=c.lr, betas=c.adam_betas, weight_decay=c.weight_decay)

    def _trained(self) -> dict[str, torch.Tensor]:
        """The trainable tensors by name, whole: a sharded group gathers them (every rank
        must call this at once)."""
        return {n: full(p.detach()) for n, p in self.unet.named_parameters() if p.requires_grad}

    @property
    def _writes(self) -> bool:
        """Whether this rank returns the weights it gathers (rank 0; every unsharded rank)."""
        return not self.sharded or self.ranks.rank == 0

    # ---- weights ----------------------------------------------------------------
    def publish(self) -> WeightsUpdate:
        """The trainable weights (a sharded group: every rank gathers, rank 0 returns them)."""
        if not self.sharded:
            return WeightsUpdate(self.version, trainable_state(self.unet))
        whole = self._trained()
        return WeightsUpdate(self.version, {n: t.float().cpu().numpy() for n, t in whole.items()} if self._writes else {})

    def state(self) -> LearnerState:
        """Trainable weights (at their own dtype), AdamW moments, the advantage tracker
        and the window/shuffle RNG: what resuming needs for an identical continuation."""
        trained = self._trained()
        names = list(trained)
        tensors = {f"param.{n}": p.cpu().clone() for n, p in trained.items()}
        opt, opt_meta = optimizer_tensors(self.optimizer, "opt.")  # whole moments: the unsharded layout
        meta = {"param_names": names, **opt_meta, "tracker": self.tracker.state_dict(), "rng": self.rng.bit_generator.state,
                "next_window": None if self.next_window is None else list(self.next_window)}
        tensors.update(opt)
        tensors["generator"] = self.generator.get_state()
        if self.algorithm is not None:
            algo_tensors, meta["algorithm"] = self.algorithm.state()
            tensors.update(algo_tensors)
        return LearnerState(self.version, tensors, meta) if self._writes else LearnerState(self.version, {}, {})

    def load_state(self, st: LearnerState) -> None:
        trained = {n: p for n, p in self.unet.named_parameters() if p.requires_grad}
        if list(trained) != st.meta["param_names"]:
            raise ValueError(f"checkpoint trains {len(st.meta['param_names'])} tensors, this model {len(trained)}: "
                             "model or LoRA settings differ from the run being resumed")
        with torch.no_grad():
            for n, p in trained.items():
                assign(p, st.tensors[f"param.{n}"])
        load_optimizer(self.optimizer, st.tensors, st.meta, "opt.", like=self.params)
        self.tracker.load_state_dict(st.meta["tracker"])
        self.rng.bit_generator.state = st.meta["rng"]
        nw = st.meta.get("next_window")
        self.next_window = None if nw is None else (int(nw[0]), int(nw[1]))
        if "generator" in st.tensors:
            self.generator.set_state(st.tensors["generator"])
        if self.algorithm is not None:
            self.algorithm.load_state(st.tensors, st.meta["algorithm"])
        self.version = st.version

    def export(self) -> "Checkpoint":
        """The trainable weights in the layout a plain diffusers pipeline loads."""
        from ..models.loader import lora_state_for_diffusers

        if self.trainable == "lora":
            state = {k: v.numpy() for k, v in lora_state_for_diffusers(self.unet).items()}
            return Checkpoint("lora", self.version, state, {}, self.denoiser_name)
        state = {k: full(v.detach()).cpu().numpy() for k, v in self.unet.state_dict().items()}  # sharded: gathered
        return Checkpoint("full", self.version, state if self._writes else {}, dict(self.unet.config), self.denoiser_name)


@dataclass(frozen=True)
class Checkpoint:
    kind: str                      # "lora" (diffusers LoRA layout) or "full" (UNet state dict)
    version: int
    state: dict[str, np.ndarray]
    config: dict                   # the denoiser's config (full fine-tuning)
    denoiser: str = "unet"         # "unet" or "transformer": the pipeline component


def _per_step_counts(masks: list[np.ndarray]) -> list[float]:
    """(K,) (sample, step) pairs trained per step in one pass, averaged over the passes'
    masks (whole numbers unless the passes drew different subsets)."""
    counts = np.mean([m.sum(0) for m in masks], axis=0)
    return [int(c) if float(c).is_integer() else float(c) for c in counts]


def _span(mask: np.ndarray) -> tuple[int, int] | None:
    """(first, last + 1) step any row of a (B, K) mask selects: one window for a whole
    batch of rollouts; None when nothing is selected."""
    steps = np.flatnonzero(mask.any(0))
    return (int(steps[0]), int(steps[-1]) + 1) if len(steps) else None


def _nanmean(v: np.ndarray) -> float:
    """Mean over the entries that apply (a check that does not apply to a prompt is NaN)."""
    v = v[~np.isnan(v)]
    return float(v.mean()) if len(v) else float("nan")

"""The controller (the Ray job's driver): the training loop as named, timed phases.

    setup:    reward application (deployed or attached), placement, sampler actors,
              learner, weight publisher, weights v0
    for each iteration:
      rollout   samplers generate trajectories; the reward app scores them
      update    learner: advantages -> AdaScope window -> clipped update, version+1
      publish   new weights to every sampler
      log       metrics.jsonl, dashboard metrics, image grid, checkpoint
    teardown: final checkpoint, actors and (unless kept) the reward app removed
"""
from __future__ import annotations

import time
from contextlib import contextmanager

import ray
from ray import serve

from ..config import dump_config
from ..core.cost import cost_fwd_equiv
from ..data import PromptSchedule
from ..runio import RunDir
from .actors import release_placement, reserve_placement, start_learner, start_samplers
from .metrics import RunMetrics
from .publish import Publisher
from .serve_app import ensure_rewards


class PhaseTimer:
    def __init__(self):
        self.seconds: dict[str, float] = {}

    @contextmanager
    def __call__(self, name: str):
        t = time.perf_counter()
        yield
        self.seconds[name] = time.perf_counter() - t


class Controller:
    def __init__(self, cfg, run_dir: RunDir, prompts: list[str], progress: bool = True, resume=None):
        """`resume`: (iteration, LearnerState) from a checkpoint, or None to start fresh."""
        self.cfg, self.run_dir, self.progress = cfg, run_dir, progress
        self.schedule = PromptSchedule(prompts, cfg.data.prompts_per_iteration, cfg.data.group_size, cfg.run.seed)
        self.version = 0
        self.rows: list[dict] = []
        self.resume = resume
        self.start = resume[0] if resume else 0

    # ---- the loop -----------------------------------------------------------------
    def run(self) -> list[dict]:
        self.setup()
        try:
            for it in self._iterations():
                self.rows.append(self.iteration(it))
            self.checkpoint(self.cfg.run.iterations, final=True)
        finally:
            self.teardown()
        return self.rows

    def iteration(self, it: int) -> dict:
        timer = PhaseTimer()
        with timer("rollout"):
            scored = self.rollout(it)
        with timer("update"):
            stats = ray.get(self.learner.update.remote(it, *scored))
        with timer("publish"):
            self.publish()
        with timer("log"):
            row = self.log(it, stats, scored, timer.seconds)
        return row

    # ---- phases -------------------------------------------------------------------
    def setup(self) -> None:
        self.run_dir.write_config(dump_config(self.cfg))
        self.metrics = RunMetrics(self.cfg.run.name)
        self.owns_rewards = ensure_rewards(self.cfg.rewards)
        self.placement = reserve_placement(self.cfg)
        self.samplers = start_samplers(self.cfg, self.placement)
        self.learner = start_learner(self.cfg, self.placement)
        if self.resume:  # exact state: weights, optimizer, tracker, RNG, version
            ray.get(self.learner.load_state.remote(self.resume[1]))
            self.rows = self.run_dir.truncate_metrics(self.start)
        self.run_dir.write_json("actors.json", self.placement_report())
        self.publisher = Publisher(self.cfg, self.learner, self.samplers)
        self.publish()  # the samplers start from the learner's exact weights (v0)

    def placement_report(self) -> dict:
        actors = [self.learner] + self.samplers
        names = [f"{self.cfg.run.name}:learner"] + [f"{self.cfg.run.name}:sampler:{i}" for i in range(len(self.samplers))]
        places = ray.get([a.where.remote() for a in actors])
        return {"placement": self.cfg.cluster.placement,
                "placement_group_id": self.placement.id.hex() if self.placement else None,
                "actors": {n: {**p, "bundle_index": i if self.placement else None}
                           for i, (n, p) in enumerate(zip(names, places))}}

    def rollout(self, it: int) -> list:
        batches = self.schedule.batches(it, len(self.samplers), self.version)
        refs = [s.sample_and_score.remote(b) for s, b in zip(self.samplers, batches)]
        ray.wait(refs, num_returns=len(refs), fetch_local=False)  # done, but left in the object store
        return refs

    def publish(self) -> None:
        versions = self.publisher()
        if len(set(versions)) != 1:
            raise RuntimeError(f"samplers disagree on the weights version after publish: {versions}")
        self.version = versions[0]

    def log(self, it: int, stats, scored: list, phases: dict[str, float]) -> dict:
        wall = sum(phases.values())
        cost = cost_fwd_equiv(stats.sampler_forward_rows, stats.learner_forward_rows)
        row = {
            "iteration": it, "weights_version": self.version,
            "reward_mean": stats.reward_mean, "reward_std": stats.reward_std,
            **{f"reward/{k}": v for k, v in stats.reward_components.items()},
            "window_start": stats.window_start_mean, "window_length": stats.window_length_mean,
            "window_hist": stats.window_hist, "k_lo": stats.k_lo, "k_hi": stats.k_hi,
            "zero_std_ratio": stats.zero_std_ratio, "dropped_stale": stats.dropped_stale,
            "samples": stats.samples, "trained_pairs": stats.trained_pairs,
            "samples_per_s": stats.samples / wall if wall > 0 else 0.0,
            "cost_fwd_equiv": cost, "cost_per_trajectory": cost / max(stats.samples, 1),
            "sampler_forward_rows": stats.sampler_forward_rows,
            "learner_forward_rows": stats.learner_forward_rows,
            "loss": stats.loss, "approx_kl": stats.approx_kl, "clipfrac": stats.clipfrac,
            "grad_norm": stats.grad_norm, "iteration_s": wall,
            **{f"time/{k}": v for k, v in phases.items()},
            **{f"time/{k}": v for k, v in stats.rollout_timings.items()},
            **{f"time/learner_{k}": v for k, v in stats.timings.items()},
        }
        self.run_dir.append_metrics(row)
        self.metrics.record(row)
        last = it == self.cfg.run.iterations - 1
        if it % self.cfg.run.grid_every == 0 or last:
            first = ray.get(scored[0])
            r = first.rollout
            self.run_dir.save_grid(it, r.images, r.prompts, first.rewards.total, self.cfg.data.group_size)
        every = self.cfg.run.checkpoint_every
        if every and (it + 1) % every == 0 and not last:
            self.checkpoint(it + 1)
        return row

    def checkpoint(self, step: int, final: bool = False) -> None:
        ckpt, state = ray.get([self.learner.export.remote(), self.learner.state.remote()])
        path = self.run_dir.save_checkpoint(step, ckpt, {"iteration": step, "final": final}, state)
        self.run_dir.prune_checkpoints(self.cfg.run.keep_checkpoints)
        if final:
            self.final_checkpoint = path

    def teardown(self) -> None:
        for actor in getattr(self, "samplers", []) + [getattr(self, "learner", None)]:
            if actor is not None:
                ray.kill(actor)
        release_placement(getattr(self, "placement", None))
        if getattr(self, "owns_rewards", False) and not self.cfg.rewards.keep_app:
            try:
                serve.delete(self.cfg.rewards.app_name)
            except Exception:  # noqa: BLE001 - best effort on the way out
                pass

    def _iterations(self):
        its = range(self.start, self.cfg.run.iterations)
        if not self.progress:
            return its
        from tqdm import tqdm

        bar = tqdm(its, desc=self.cfg.run.name, unit="it", dynamic_ncols=True,
                   initial=self.start, total=self.cfg.run.iterations)

        def gen():
            for it in bar:
                yield it
                r = self.rows[-1]
                bar.set_postfix(reward=f"{r['reward_mean']:.3f}", window=f"{r['window_start']:.0f}+{r['window_length']:.1f}",
                                cost=r["cost_fwd_equiv"])
        return gen()

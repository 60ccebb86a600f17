"""The controller (the Ray job's driver): the training loop as named, timed phases.

    setup:    reward application (deployed or attached), placement, the sampler group
              (cluster/sampler_group.py: calls, a lost sampler's recovery), the learner
              group (cluster/learner_group.py: one or more data-parallel ranks), weight
              publisher, weights v0
    for each iteration:
      rollout   samplers generate trajectories; the reward app scores them (under the
                asynchronous schedule, learner.max_staleness >= 1: the ones sampled
                during the last update, at the weights the samplers held then)
      update    learner: advantages -> AdaScope window -> clipped update, version+1;
                asynchronous: meanwhile the samplers generate the next iteration's
      drain     asynchronous: wait for those rollouts (a sampler lost meanwhile is
                restarted and redoes its shard), so the samplers are free to load
      publish   new weights to every sampler
      evaluate  every eval.every updates: fixed prompts and noise, paired with the
                evaluation before training (cluster/evaluator.py)
      log       metrics.jsonl, dashboard metrics (and TensorBoard), image grid, checkpoint
      stop?     run.stop: the evaluation's gain has saturated (core/stopping.py); the
                best evaluation's weights are kept as checkpoints/best
    teardown: final checkpoint, actors and (unless kept) the reward app removed
"""
from __future__ import annotations

import time
from contextlib import contextmanager
from dataclasses import dataclass

import ray
from ray import serve

from ..config import dump_config
from ..core.cost import cost_fwd_equiv
from ..data import PromptSchedule
from ..runio import RunDir
from ..tensorboard_log import TensorBoardLog
from .actors import release_placement, reserve_placement
from .errors import LearnerLost, RunFailed  # noqa: F401 - RunFailed: what the CLI catches
from .learner_group import LearnerGroup
from .sampler_group import SamplerGroup
from .evaluator import InRunEvaluator
from .metrics import RunMetrics
from .publish import Publisher
from .serve_app import ensure_rewards


@dataclass
class Ahead:
    """Rollouts started while the learner trains (asynchronous schedule)."""
    iteration: int
    calls: list            # calls[i](sampler i), to redo a lost sampler's shard
    pending: dict          # i -> (ref to wait on, ref to return)
    scored: list | None = None  # the scored rollouts' refs, once drained


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
        """`resume`: (iteration, LearnerState) from a checkpoint, (0, None) to start a
        stopped run's folder again, or None for a fresh run."""
        self.cfg, self.run_dir, self.progress = cfg, run_dir, progress
        self.schedule = PromptSchedule(prompts, cfg.data.prompts_per_iteration, cfg.data.group_size, cfg.run.seed)
        self.version = 0
        self.rows: list[dict] = []
        self.resume = resume
        self.start = resume[0] if resume else 0
        self.consistent_at: int | None = None  # iteration the learner's state matches, when it does
        self.saved_at: int | None = None       # iteration of the newest checkpoint written
        self.done = self.start  # iterations completed
        self.stopped: dict | None = None  # why and when the run stopped early
        # window.placement = sampler: the steps the next rollouts sample stochastically (None: all)
        nw = resume[1].meta.get("next_window") if resume and resume[1] is not None else None
        self.window: tuple[int, int] | None = None if nw is None else (int(nw[0]), int(nw[1]))
        self.ahead: Ahead | None = None  # asynchronous schedule: the next iteration's rollouts

    # ---- the loop -----------------------------------------------------------------
    def run(self) -> list[dict]:
        try:
            self.setup()
            for it in self._iterations():
                self.rows.append(self.iteration(it))
                self.done = it + 1
                if "eval/reward" in self.rows[-1] and self.keep_best_or_stop(it + 1):
                    break
            self.checkpoint(self.done, final=True)
        except BaseException:
            # first the reward app (a request, not a wait): `ray job stop` kills the driver
            # a few seconds after its SIGTERM, possibly before the checkpoint is written
            self.release_rewards(wait=False)
            self.save_on_failure()
            raise
        finally:
            self.teardown()
        return self.rows

    def iteration(self, it: int) -> dict:
        timer = PhaseTimer()
        with timer("rollout"):
            scored = self.rollout(it)
        self.consistent_at = None  # the learner is about to move past the metrics on disk
        with timer("update"):
            update = self.learners.update(it, scored)
            self.sample_ahead(it + 1)  # asynchronous: the next rollouts, at the weights the samplers hold
            stats = self.call_learner(update)
            self.window = stats.next_window  # window.placement = sampler: the next rollouts' noisy steps
        if self.ahead and self.ahead.scored is None:
            with timer("drain"):
                self.drain()
        with timer("publish"):
            self.publish()
        evaluated = {}
        if self.evaluator and self.evaluator.due(it + 1, last=it + 1 == self.cfg.run.iterations):
            with timer("evaluate"):
                evaluated = self.evaluate(it + 1)
        with timer("log"):
            row = self.log(it, stats, scored, timer.seconds, evaluated)
        self.consistent_at = it + 1
        return row

    # ---- phases -------------------------------------------------------------------
    def setup(self) -> None:
        self.run_dir.write_config(dump_config(self.cfg))
        self.metrics = RunMetrics(self.cfg.run.name)
        self.tensorboard = TensorBoardLog(self.run_dir.root, self.start) if self.cfg.run.tensorboard else None
        self.owns_rewards = ensure_rewards(self.cfg.rewards)
        self.placement = reserve_placement(self.cfg)
        self.samplers = SamplerGroup(self.cfg, self.placement)
        self.learners = LearnerGroup(self.cfg, self.placement)
        if self.resume:  # exact state: weights, optimizer, tracker, RNG, version
            if self.resume[1] is not None:
                self.learners.load_state(self.resume[1])
            self.rows = self.run_dir.truncate_metrics(self.start)
            (self.run_dir.root / "stopped.json").unlink(missing_ok=True)  # a resumed run goes on
        self.run_dir.write_json("actors.json", self.placement_report())
        self.publisher = self.samplers.publisher = Publisher(self.cfg, self.learners, self.samplers.actors)
        self.publish()
        self.consistent_at = self.start  # the samplers start from the learner's exact weights (v0)
        self.evaluator = InRunEvaluator(self.cfg, self.run_dir) if self.cfg.eval.every else None
        if self.evaluator:
            self.evaluator.resume(self.start)
            if self.evaluator.base is None:  # the evaluation every later one is paired with
                self.evaluate(self.start)
                self.keep_best_or_stop(self.start)

    def placement_report(self) -> dict:
        actors = self.learners.actors + self.samplers.actors
        names = self.learners.names + self.samplers.names
        places = ray.get([a.where.remote() for a in actors])
        return {"placement": self.cfg.cluster.placement,
                "placement_group_id": self.placement.id.hex() if self.placement else None,
                "actors": {n: {**p, "bundle_index": i if self.placement else None}
                           for i, (n, p) in enumerate(zip(names, places))}}

    def rollout(self, it: int) -> list:
        """Each sampler's shard, scored; the rollouts stay in the object store (refs).
        Those sampled ahead during the last update when there are (asynchronous)."""
        if self.ahead and self.ahead.iteration == it:
            scored, self.ahead = self.ahead.scored, None
            return scored
        return self.samplers.run(self.rollout_calls(it))

    def rollout_calls(self, it: int) -> list:
        batches = self.schedule.batches(it, len(self.samplers), self.version, self.window)
        return [lambda a, b=b: a.sample_and_score.options(num_returns=2).remote(b) for b in batches]

    def sample_ahead(self, it: int) -> None:
        """Asynchronous schedule (learner.max_staleness >= 1): start iteration it's
        rollouts now, while the learner trains; synchronous: nothing."""
        if self.cfg.learner.max_staleness >= 1 and it < self.cfg.run.iterations:
            calls = self.rollout_calls(it)
            self.ahead = Ahead(it, calls, self.samplers.launch(calls))

    def drain(self) -> None:
        """Wait for the rollouts sampled ahead; the samplers are then idle for publish."""
        self.ahead.scored = self.samplers.collect(self.ahead.calls, self.ahead.pending)

    def evaluate(self, updates: int) -> dict:
        """The in-run evaluation's row fields; its batches split over the samplers."""
        def call(batches, grid_prompts):
            n = min(len(self.samplers), len(batches))
            shares = [batches[i::n] for i in range(n)]
            refs = self.samplers.run([lambda a, sh=sh: (a.evaluate.remote(sh, grid_prompts),) * 2 for sh in shares])
            per_sampler = ray.get(refs)
            return [per_sampler[j % n][j // n] for j in range(len(batches))]  # back in the batches' order
        return self.evaluator.run(updates, self.version, call)

    def call_learner(self, refs: list):
        """The learner ranks' result; the loss of any rank stops the run (never continue
        with wrong state). Waits on whichever finishes first, so a dead rank is seen
        while the others still wait for it in an all-reduce."""
        pending, done = list(refs), {}
        while pending:
            ready, pending = ray.wait(pending, num_returns=1)
            try:
                done[ready[0]] = ray.get(ready[0])
            except ray.exceptions.RayActorError as err:
                raise LearnerLost(f"a learner actor died ({type(err).__name__})") from None
        return self.learners.combine([done[r] for r in refs])

    def publish(self) -> None:
        try:
            versions = self.publisher()
        except ray.exceptions.RayActorError as err:
            raise RunFailed(f"an actor died while weights were published ({type(err).__name__})") from None
        if len(set(versions)) != 1:
            raise RuntimeError(f"samplers disagree on the weights version after publish: {versions}")
        self.version = versions[0]

    def log(self, it: int, stats, scored: list, phases: dict[str, float], evaluated: dict) -> dict:
        wall = sum(v for k, v in phases.items() if k != "evaluate")  # training time; evaluation is reported apart
        cost = cost_fwd_equiv(stats.sampler_forward_rows, stats.learner_forward_rows)
        row = {
            "iteration": it, "weights_version": self.version,
            "reward_mean": stats.reward_mean, "reward_std": stats.reward_std,
            **{f"reward/{k}": v for k, v in stats.reward_components.items()},
            "window_start": stats.window_start_mean, "window_length": stats.window_length_mean,
            "window_hist": stats.window_hist, "k_lo": stats.k_lo, "k_hi": stats.k_hi,
            "zero_std_ratio": stats.zero_std_ratio, "dropped_stale": stats.dropped_stale,
            "dropped_nonfinite": stats.dropped_nonfinite, "skipped_steps": stats.skipped_steps,
            "samples": stats.samples, "trained_pairs": stats.trained_pairs,
            "samples_per_s": stats.samples / wall if wall > 0 else 0.0,
            "cost_fwd_equiv": cost, "cost_per_trajectory": cost / max(stats.samples, 1),
            "sampler_forward_rows": stats.sampler_forward_rows,
            "learner_forward_rows": stats.learner_forward_rows,
            **{f"sampler_{k}": v for k, v in stats.rollout_counters.items()},
            "loss": stats.loss, "approx_kl": stats.approx_kl, "clipfrac": stats.clipfrac,
            **{f"loss/{k}": v for k, v in stats.loss_terms.items()},
            **{f"off_policy/{k}": v for k, v in stats.off_policy.items()},
            **stats.algorithm,
            "grad_norm": stats.grad_norm, "iteration_s": wall, "sampler_restarts": self.samplers.restarts,
            **{f"time/{k}": v for k, v in phases.items()},
            **{f"time/{k}": v for k, v in stats.rollout_timings.items()},
            **{f"time/learner_{k}": v for k, v in stats.timings.items()},
            **evaluated,
        }
        self.run_dir.append_metrics(row)
        self.metrics.record(row)
        if self.tensorboard:
            self.tensorboard.record(row)
        last = it == self.cfg.run.iterations - 1
        if it % self.cfg.run.grid_every == 0 or last:
            first = ray.get(scored[0])
            r = first.rollout
            self.run_dir.save_grid(it, r.images, r.prompts, first.rewards.total, self.cfg.data.group_size)
        every = self.cfg.run.checkpoint_every
        if every and (it + 1) % every == 0 and not last:
            self.checkpoint(it + 1)
        return row

    def keep_best_or_stop(self, updates: int) -> bool:
        """After an evaluation: keep its weights if it is the best so far; True (stop)
        when the evaluator's rule says so, the iterations (and cost) not spent counted."""
        ev = self.evaluator
        if self.cfg.run.stop.export_best and ev.best_updates == updates:
            ckpt, = self.from_learner(["export"], f"the best weights after {updates} updates were exported")
            self.run_dir.save_checkpoint(updates, ckpt, {"iteration": updates, "best": True}, name="best")
        d = ev.decision
        if not (ev.stops and d.stop) or updates >= self.cfg.run.iterations:
            return False
        left = self.cfg.run.iterations - updates
        per_it = sum(r["cost_fwd_equiv"] for r in self.rows) / max(len(self.rows), 1)
        self.stopped = {"reason": d.reason, "updates": updates, "iterations_planned": self.cfg.run.iterations,
                        "best_updates": ev.best_updates, "stale_evaluations": d.stale,
                        "saved_iterations": left, "saved_cost_fwd_equiv": round(left * per_it)}
        self.run_dir.write_json("stopped.json", self.stopped)
        return True

    def from_learner(self, methods: list[str], while_: str) -> list:
        """The results of rank 0's `methods` (see LearnerGroup.call); a dead learner rank
        stops the run as LearnerLost (the CLI then prints the resume command), wherever
        the loop was when it died."""
        try:
            return ray.get([self.learners.call(m) for m in methods])
        except ray.exceptions.RayActorError as err:
            raise LearnerLost(f"a learner actor died while {while_} ({type(err).__name__})") from None

    def checkpoint(self, step: int, final: bool = False) -> None:
        ckpt, state = self.from_learner(["export", "state"], f"the checkpoint at iteration {step} was taken")
        path = self.run_dir.save_checkpoint(step, ckpt, {"iteration": step, "final": final}, state)
        self.run_dir.prune_checkpoints(self.cfg.run.keep_checkpoints)
        self.saved_at = step
        if final:
            self.final_checkpoint = path

    def save_on_failure(self) -> None:
        """On the way out of a failed or stopped run: if the learner is alive and its
        state matches the metrics on disk, checkpoint it so --resume loses nothing."""
        at = self.consistent_at
        if at is None or at == self.saved_at or at == self.start or getattr(self, "learners", None) is None:
            return
        try:
            self.checkpoint(at)
            print(f"adascope-ray: saved a checkpoint at iteration {at} before stopping", flush=True)
        except Exception as err:  # noqa: BLE001 - the learner may be the thing that failed
            print(f"adascope-ray: could not save a checkpoint at iteration {at} before stopping "
                  f"({type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}); "
                  f"--resume continues from iteration {self.saved_at or self.start}", flush=True)

    def teardown(self) -> None:
        if getattr(self, "tensorboard", None):
            self.tensorboard.close()
        learners, samplers = getattr(self, "learners", None), getattr(self, "samplers", None)
        for actor in (samplers.actors if samplers else []) + (learners.actors if learners else []):
            ray.kill(actor)
        release_placement(getattr(self, "placement", None))
        self.release_rewards(wait=True)

    def release_rewards(self, wait: bool) -> None:
        """Remove the reward app this run deployed (not one it attached to)."""
        if getattr(self, "owns_rewards", False) and not self.cfg.rewards.keep_app:
            try:
                serve.delete(self.cfg.rewards.app_name, _blocking=wait)
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
                ev = next((x for x in reversed(self.rows) if "eval/reward" in x), None)
                bar.set_postfix(reward=f"{r['reward_mean']:.3f}", window=f"{r['window_start']:.0f}+{r['window_length']:.1f}",
                                cost=r["cost_fwd_equiv"],
                                **({"eval": f"{ev['eval/reward']:.3f} ({ev['eval/gain']:+.3f}±{ev['eval/gain_se']:.3f})"} if ev else {}))
        return gen()

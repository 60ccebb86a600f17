"""Ray actors wrapping the plain Sampler and Learner classes, and their placement."""
from __future__ import annotations

import time

import ray
from ray.util.placement_group import placement_group, remove_placement_group
from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

from .._compat import setup_worker
from .metrics import ActorMetrics
from ..types import PromptBatch, ScoredRollout, UpdateStats, WeightsUpdate


def where() -> dict:
    """This actor's node, process, scheduling priority and placement (for <run>/actors.json)."""
    import os

    ctx = ray.get_runtime_context()
    return {"node_id": ctx.get_node_id(), "pid": os.getpid(), "nice": os.nice(0),
            "placement_group_id": ctx.get_placement_group_id()}


class SamplerBehind(RuntimeError):
    """The sampler holds older weights than the batch asks for: Ray restarted it (with
    no weights) between two calls, so no call of ours saw it die."""


class SamplerWorker:
    """Generates a rollout, scores it on the reward application, returns both."""

    def __init__(self, model_cfg, sampling_cfg, sampler_cfg, pool: int, reward_app: str, semantic=None,
                 reward_trace=None):
        setup_worker()
        from ..rollout import Sampler

        self.reward_app = reward_app
        self.timeout_s = sampler_cfg.reward_timeout_s
        self.attempts = sampler_cfg.reward_attempts
        embed = self._embedder(semantic.reward) if semantic is not None and semantic.source == "embedding" else None
        score = (lambda images, prompts: self._score(images, prompts).total) if reward_trace is not None and reward_trace.enabled else None
        self.sampler = Sampler(model_cfg, sampling_cfg, sampler_cfg, pool=pool, semantic=semantic, embed=embed,
                               reward_trace=reward_trace, score=score)
        self.metrics = ActorMetrics(ray.get_runtime_context().get_actor_name())

    def set_weights(self, update: WeightsUpdate) -> int:
        version = self.sampler.set_weights(update)
        self.metrics.record(version=version)
        return version

    def version(self) -> int:
        return self.sampler.version

    def where(self) -> dict:
        return where()

    def join_group(self, world_size: int, rank: int, backend: str, group: str, timeout_s: float) -> None:
        from .publish import join_group

        join_group(world_size, rank, backend, group, timeout_s)

    def receive_weights(self, backend: str, group: str) -> int:
        from .publish import receive_state

        version, state = receive_state(self.sampler.trainable_layout, backend, group)
        return self.set_weights(WeightsUpdate(version, state))

    def sample_and_score(self, batch: PromptBatch) -> tuple[dict, ScoredRollout]:
        """Returns (a small summary, the scored rollout): the controller waits on the
        summary and leaves the rollout in the object store for the learner."""
        self._check_version(batch)
        t0 = time.perf_counter()
        rollout = self.sampler.sample(batch)
        t = time.perf_counter()
        rewards = self._score(rollout.images, rollout.prompts)
        rollout.timings["score_s"] = time.perf_counter() - t
        self.metrics.record(busy_s=time.perf_counter() - t0)
        return {"version": rollout.policy_version, "samples": rollout.batch_size}, ScoredRollout(rollout, rewards)

    def evaluate(self, batches: list[PromptBatch], grid_prompts: int) -> list[dict]:
        """Sample and score each evaluation batch (adascope_ray.evaluation): per batch the
        rewards, each component, the denoiser rows run and the first grid_prompts images."""
        out = []
        for batch in batches:
            self._check_version(batch)
            rollout = self.sampler.sample(batch)
            r = self._score(rollout.images, rollout.prompts, evaluation=True)
            out.append({"total": r.total, "components": r.components, "rows": rollout.sampler_forward_rows,
                        "images": rollout.images[:grid_prompts]})
        return out

    def _check_version(self, batch: PromptBatch) -> None:
        if self.sampler.version < batch.policy_version:
            raise SamplerBehind(f"sampler holds weights v{self.sampler.version}, the batch wants v{batch.policy_version}")

    def _embedder(self, component: str):
        """The reward app's `component` deployment as an image embedder (its `embed` method)."""
        from ray import serve

        def embed(images):
            handle = serve.get_deployment_handle(f"reward_{component}", self.reward_app)
            return self._retried(lambda: handle.embed.remote(images).result(timeout_s=self.timeout_s))
        return embed

    def _retried(self, call):
        """call(); retried, bounded (a lasting failure surfaces)."""
        for attempt in range(1, self.attempts + 1):
            try:
                return call()
            except Exception:  # noqa: BLE001 - app mid-update or redeployed, replica being replaced, timeout
                if attempt == self.attempts:
                    raise
                time.sleep(min(2.0 ** attempt, 30.0))  # a redeploy on a busy machine takes tens of seconds

    def _score(self, images, prompts, evaluation: bool = False):
        """The reward application's RewardResult (evaluation: each reward's held-out form);
        retried, bounded (a lasting failure surfaces)."""
        from .serve_app import reward_handle

        return self._retried(lambda: reward_handle(self.reward_app).score.remote(images, prompts, evaluation)
                             .result(timeout_s=self.timeout_s))


class LearnerWorker:
    def __init__(self, model_cfg, sampling_cfg, learner_cfg, window_cfg, advantage_cfg, rewards_cfg=None):
        setup_worker()
        from ..learner import Learner

        self.learner = Learner(model_cfg, sampling_cfg, learner_cfg, window_cfg, advantage_cfg, rewards_cfg)
        self.metrics = ActorMetrics(ray.get_runtime_context().get_actor_name())

    def update(self, iteration: int, *scored: ScoredRollout) -> UpdateStats:
        t0 = time.perf_counter()
        stats = self.learner.update(iteration, list(scored))
        self.metrics.record(busy_s=time.perf_counter() - t0, version=stats.policy_version)
        return stats

    def rendezvous(self) -> tuple[str, int]:
        """Rank 0: this node's address and a free port for the learner group to meet at."""
        import socket

        with socket.socket() as sock:
            sock.bind(("", 0))
            port = sock.getsockname()[1]
        return ray.util.get_node_ip_address(), port

    def join_ranks(self, rank: int, world: int, address: str, port: int, backend: str, timeout_s: float) -> None:
        self.learner.join_group(rank, world, address, port, backend, timeout_s)

    def publish(self) -> WeightsUpdate:
        return self.learner.publish()

    def export(self):
        return self.learner.export()

    def state(self):
        return self.learner.state()

    def load_state(self, state) -> None:
        self.learner.load_state(state)

    def where(self) -> dict:
        return where()

    def join_group(self, world_size: int, rank: int, backend: str, group: str, timeout_s: float) -> None:
        from .publish import join_group

        join_group(world_size, rank, backend, group, timeout_s)

    def send_weights(self, backend: str, group: str) -> int:
        from .publish import send_state

        update = self.learner.publish()
        return send_state(update.version, update.state, backend, group)


def _bundle(num_cpus: float, num_gpus: float) -> dict[str, float]:
    return {k: v for k, v in (("CPU", num_cpus), ("GPU", num_gpus)) if v > 0}


def reserve_placement(cfg):
    """A placement group with bundles 0..R-1 for the learner ranks and R..R+N-1 for the samplers,
    or None when `cluster.placement` is 'none'. Waits for the resources."""
    if cfg.cluster.placement == "none":
        return None
    bundles = [_bundle(cfg.learner.num_cpus, cfg.learner.num_gpus)] * cfg.learner.group.num_ranks
    bundles += [_bundle(cfg.sampler.num_cpus, cfg.sampler.num_gpus)] * cfg.sampler.num_samplers
    pg = placement_group(bundles, strategy=cfg.cluster.placement, name=f"{cfg.run.name}:placement")
    ready, _ = ray.wait([pg.ready()], timeout=cfg.cluster.placement_timeout_s)
    if not ready:
        remove_placement_group(pg)
        raise RuntimeError(f"cluster.placement={cfg.cluster.placement}: the cluster could not reserve {bundles} "
                           f"within {cfg.cluster.placement_timeout_s:.0f} s")
    return pg


def release_placement(pg) -> None:
    if pg is not None:
        remove_placement_group(pg)


def _placed(pg, bundle: int) -> dict:
    if pg is None:
        return {}
    return {"scheduling_strategy": PlacementGroupSchedulingStrategy(
        placement_group=pg, placement_group_bundle_index=bundle)}


def sampler_name(cfg, i: int) -> str:
    return f"{cfg.run.name}:sampler:{i}"


def start_samplers(cfg, pg=None) -> list:
    actor = ray.remote(SamplerWorker)
    return [
        actor.options(name=sampler_name(cfg, i), num_cpus=cfg.sampler.num_cpus,
                      num_gpus=cfg.sampler.num_gpus, max_restarts=cfg.sampler.max_restarts,
                      max_task_retries=0, **_placed(pg, cfg.learner.group.num_ranks + i))
        .remote(cfg.model, cfg.sampling, cfg.sampler, cfg.window.pool, cfg.rewards.app_name, cfg.window.semantic,
                cfg.window.reward_trace)
        for i in range(cfg.sampler.num_samplers)
    ]


def learner_name(cfg, rank: int = 0) -> str:
    return f"{cfg.run.name}:learner" + (f":{rank}" if rank else "")


def start_learner(cfg, pg=None, rank: int = 0):
    return ray.remote(LearnerWorker).options(
        name=learner_name(cfg, rank), num_cpus=cfg.learner.num_cpus, num_gpus=cfg.learner.num_gpus,
        **_placed(pg, rank),
    ).remote(cfg.model, cfg.sampling, cfg.learner, cfg.window, cfg.advantage, cfg.rewards)

"""Ray actors wrapping the plain Sampler and Learner classes."""
from __future__ import annotations

import time

import ray

from .._compat import setup_worker
from ..types import PromptBatch, ScoredRollout, UpdateStats, WeightsUpdate


class SamplerWorker:
    """Generates a rollout, scores it on the reward application, returns both."""

    def __init__(self, model_cfg, sampling_cfg, sampler_cfg, pool: int, reward_app: str):
        setup_worker()
        from ..rollout import Sampler

        self.sampler = Sampler(model_cfg, sampling_cfg, sampler_cfg, pool=pool)
        self.reward_app = reward_app
        self.timeout_s = sampler_cfg.reward_timeout_s
        self.attempts = sampler_cfg.reward_attempts

    def set_weights(self, update: WeightsUpdate) -> int:
        return self.sampler.set_weights(update)

    def version(self) -> int:
        return self.sampler.version

    def sample_and_score(self, batch: PromptBatch) -> ScoredRollout:
        from .serve_app import reward_handle

        rollout = self.sampler.sample(batch)
        t = time.perf_counter()
        for attempt in range(1, self.attempts + 1):  # bounded: a lasting failure still surfaces
            try:
                response = reward_handle(self.reward_app).score.remote(rollout.images, rollout.prompts)
                rewards = response.result(timeout_s=self.timeout_s)
                break
            except Exception:  # noqa: BLE001 - app mid-update, replica being replaced, timeout
                if attempt == self.attempts:
                    raise
                time.sleep(2.0 * attempt)
        rollout.timings["score_s"] = time.perf_counter() - t
        return ScoredRollout(rollout, rewards)


class LearnerWorker:
    def __init__(self, model_cfg, sampling_cfg, learner_cfg, window_cfg, advantage_cfg):
        setup_worker()
        from ..learner import Learner

        self.learner = Learner(model_cfg, sampling_cfg, learner_cfg, window_cfg, advantage_cfg)

    def update(self, iteration: int, *scored: ScoredRollout) -> UpdateStats:
        return self.learner.update(iteration, list(scored))

    def publish(self) -> WeightsUpdate:
        return self.learner.publish()

    def export(self):
        return self.learner.export()


def start_samplers(cfg) -> list:
    actor = ray.remote(SamplerWorker)
    return [
        actor.options(name=f"{cfg.run.name}:sampler:{i}", num_cpus=cfg.sampler.num_cpus,
                      num_gpus=cfg.sampler.num_gpus)
        .remote(cfg.model, cfg.sampling, cfg.sampler, cfg.window.pool, cfg.rewards.app_name)
        for i in range(cfg.sampler.num_samplers)
    ]


def start_learner(cfg):
    return ray.remote(LearnerWorker).options(
        name=f"{cfg.run.name}:learner", num_cpus=cfg.learner.num_cpus, num_gpus=cfg.learner.num_gpus,
    ).remote(cfg.model, cfg.sampling, cfg.learner, cfg.window, cfg.advantage)

"""The sampler actors as one unit for the controller: their calls, and the recovery of
one that dies.

    launch(calls)            calls[i](sampler i) -> (ref to wait on, ref to return)
    collect(calls, pending)  wait for each; a sampler that died (mid-call, or between
                             calls) is restarted by Ray, given the *published* weights
                             the others hold and redoes its call: same batch, same seed,
                             same weights, so the same result
    run(calls)               both

The asynchronous schedule launches a rollout during the update and collects it later;
the synchronous one runs it at once. Either way a lost shard is redone, never lost or
counted twice.
"""
from __future__ import annotations

import time

import ray

from .actors import SamplerBehind, sampler_name, start_samplers
from .errors import RunFailed


class SamplerGroup:
    def __init__(self, cfg, pg=None):
        self.cfg = cfg
        self.actors = start_samplers(cfg, pg)
        self.names = [sampler_name(cfg, i) for i in range(len(self.actors))]
        self.restarts = 0
        self.publisher = None  # set once weights are published: restarted samplers reload from it

    def __len__(self) -> int:
        return len(self.actors)

    def run(self, calls: list) -> list:
        return self.collect(calls, self.launch(calls))

    def launch(self, calls: list) -> dict:
        return {i: calls[i](self.actors[i]) for i in range(len(calls))}

    def collect(self, calls: list, pending: dict) -> list:
        done = {}
        while pending:
            for i, (wait, keep) in list(pending.items()):
                try:
                    ray.get(wait)  # small; a rollout itself stays in the object store
                    done[i] = keep
                    del pending[i]
                except (ray.exceptions.RayActorError, SamplerBehind):  # died mid-call, or between calls
                    self.recover(i)
                    pending[i] = calls[i](self.actors[i])
        return [done[i] for i in range(len(calls))]

    def recover(self, i: int) -> None:
        """Wait for Ray's restart of sampler i and load the weights the others hold."""
        self.restarts += 1
        name, cfg = self.names[i], self.cfg.sampler
        if self.cfg.publish.method == "collective":
            raise RunFailed(f"sampler {name} died; a collective weights group cannot take a restarted member")
        if self.restarts > cfg.max_restarts:
            raise RunFailed(f"sampler {name} died; {self.restarts - 1} restarts used of sampler.max_restarts="
                            f"{cfg.max_restarts}")
        deadline = time.monotonic() + cfg.restart_timeout_s
        while True:  # Ray restarts the actor; wait until it answers
            try:
                ray.get(self.actors[i].version.remote(), timeout=10)
                break
            except (ray.exceptions.RayActorError, ray.exceptions.GetTimeoutError):
                if time.monotonic() > deadline:
                    raise RunFailed(f"sampler {name} died and did not come back within "
                                    f"{cfg.restart_timeout_s:.0f} s") from None
                time.sleep(1.0)
        self.publisher.restore(self.actors[i])  # the published version, so it can redo its shard

"""The learner ranks as one unit for the controller (learner.group).

    rank 0       publishes weights, exports checkpoints, reports the update's stats
                 (sharding=fsdp: every rank gathers its shards for these; rank 0
                 returns the whole, the others nothing)
    every rank   receives the whole batch, computes the same window and pair order,
                 differentiates its share and all-reduces the gradients
                 (learner/ranks.py); loads the same state on resume

With one rank this is the single learner actor, unchanged.
"""
from __future__ import annotations

from dataclasses import replace

import ray

from ..types import UpdateStats
from .actors import learner_name, start_learner


def group_backend(cfg) -> str:
    b = cfg.learner.group.backend
    return b if b != "auto" else ("nccl" if cfg.learner.num_gpus >= 1 else "gloo")


class LearnerGroup:
    def __init__(self, cfg, pg=None):
        g = cfg.learner.group
        self.names = [learner_name(cfg, r) for r in range(g.num_ranks)]
        self.sharded = g.sharding == "fsdp"
        self.actors = [start_learner(cfg, pg, r) for r in range(g.num_ranks)]
        if g.num_ranks > 1:
            try:
                address, port = ray.get(self.actors[0].rendezvous.remote())
                ray.get([a.join_ranks.remote(r, g.num_ranks, address, port, group_backend(cfg), g.timeout_s)
                         for r, a in enumerate(self.actors)], timeout=g.timeout_s)
            except BaseException:
                self.kill()  # named actors: none may outlive a group that did not form
                raise

    @property
    def rank0(self):
        return self.actors[0]

    def call(self, method: str):
        """The ref of rank 0's `method()` (publish, export or state). A sharded group's
        weights are gathered from every rank, so each rank is called, and this waits
        until rank 0 is done: a rank that dies meanwhile raises its RayActorError at once,
        where rank 0 would wait for it in a collective until learner.group.timeout_s."""
        if not self.sharded:
            return getattr(self.actors[0], method).remote()
        refs = [getattr(a, method).remote() for a in self.actors]
        pending = list(refs)
        while refs[0] in pending:
            ready, pending = ray.wait(pending, num_returns=1, fetch_local=False)
            if ready[0] != refs[0]:
                ray.get(ready[0])  # raises if that rank died; a live one returned nothing
        return refs[0]

    def update(self, iteration: int, scored: list) -> list:
        """Refs of every rank's UpdateStats (see `combine`)."""
        return [a.update.remote(iteration, *scored) for a in self.actors]

    @staticmethod
    def combine(stats: list[UpdateStats]) -> UpdateStats:
        """Rank 0's stats (the statistics are already summed over the ranks), with the
        denoiser rows every rank ran: the learner's cost is the group's."""
        return replace(stats[0], learner_forward_rows=sum(s.learner_forward_rows for s in stats))

    def load_state(self, state) -> None:
        ray.get([a.load_state.remote(state) for a in self.actors])

    def kill(self) -> None:
        for a in self.actors:
            ray.kill(a)

"""Weight publication from the learner to every sampler, once per version.

Two paths, chosen by `publish.method`:

    object_store  the learner returns a WeightsUpdate (numpy arrays); Ray stores it
                  once and each sampler reads it. Right for LoRA and small models.
    collective    learner (rank 0) and samplers (ranks 1..N) form a
                  ray.util.collective group; the trainable parameters are packed into
                  one flat buffer and broadcast. Right for full fine-tuning of large
                  models: gloo moves CPU tensors, nccl GPU tensors over NVLink/IB.

The flat layout is the trainable parameters sorted by name, each raveled, float32.
A header broadcast first carries (version, numel) so a receiver whose layout differs
stops with an error instead of loading shifted weights.
"""
from __future__ import annotations

import numpy as np
import ray

HEADER = 2  # (version, numel) as int64


def pack(state: dict[str, np.ndarray]) -> np.ndarray:
    """Trainable state -> one flat float32 buffer, names in sorted order."""
    return np.concatenate([np.asarray(state[n], np.float32).ravel() for n in sorted(state)]) if state else np.zeros(0, np.float32)


def unpack(flat: np.ndarray, layout: dict[str, tuple[int, ...]]) -> dict[str, np.ndarray]:
    """Inverse of `pack` for a receiver that knows the names and shapes."""
    need = sum(int(np.prod(s, dtype=np.int64)) for s in layout.values())
    if need != flat.size:
        raise ValueError(f"weights buffer holds {flat.size} values, the layout needs {need}")
    out, at = {}, 0
    for name in sorted(layout):
        n = int(np.prod(layout[name], dtype=np.int64))
        out[name] = flat[at : at + n].reshape(layout[name])
        at += n
    return out


# ---- inside the actors -------------------------------------------------------------
def join_group(world_size: int, rank: int, backend: str, group: str, timeout_s: float) -> None:
    from ray.util import collective as col

    col.init_collective_group(world_size, rank, backend=backend, group_name=group,
                              gloo_timeout=int(timeout_s * 1000))


def _as_tensor(a: np.ndarray, backend: str):
    import torch

    t = torch.from_numpy(np.ascontiguousarray(a))
    return t.cuda() if backend == "nccl" else t


def send_state(version: int, state: dict[str, np.ndarray], backend: str, group: str) -> int:
    """Rank 0: broadcast the header, then the flat buffer."""
    from ray.util import collective as col

    flat = pack(state)
    col.broadcast(_as_tensor(np.array([version, flat.size], np.int64), backend), src_rank=0, group_name=group)
    col.broadcast(_as_tensor(flat, backend), src_rank=0, group_name=group)
    return version


def receive_state(layout: dict[str, tuple[int, ...]], backend: str, group: str) -> tuple[int, dict[str, np.ndarray]]:
    """Ranks 1..N: receive what rank 0 sends; returns (version, state)."""
    from ray.util import collective as col

    header = _as_tensor(np.zeros(HEADER, np.int64), backend)
    col.broadcast(header, src_rank=0, group_name=group)
    version, numel = (int(x) for x in header.cpu().numpy())
    buf = _as_tensor(np.zeros(numel, np.float32), backend)
    col.broadcast(buf, src_rank=0, group_name=group)  # always join, so rank 0 is not left waiting
    try:
        return version, unpack(buf.cpu().numpy(), layout)
    except ValueError as err:
        raise ValueError(f"weights v{version} from the learner do not fit this sampler: {err}") from None


# ---- on the driver -----------------------------------------------------------------
def resolve_backend(cfg) -> str:
    if cfg.publish.backend != "auto":
        return cfg.publish.backend
    return "nccl" if cfg.learner.num_gpus >= 1 and cfg.sampler.num_gpus >= 1 else "gloo"


class Publisher:
    """Sends the learner's current weights to every sampler; returns their versions."""

    def __init__(self, cfg, learners, samplers: list):
        """`learners`: the LearnerGroup, whose rank 0 sends the weights."""
        self.learners, self.learner, self.samplers = learners, learners.rank0, samplers
        self.method = cfg.publish.method
        self.backend = resolve_backend(cfg)
        self.group = f"{cfg.run.name}-weights"
        self.last = None  # the ref of the newest published WeightsUpdate (object_store)
        if self.method == "collective":
            world = 1 + len(samplers)
            t = cfg.publish.timeout_s
            ray.get([self.learner.join_group.remote(world, 0, self.backend, self.group, t)]
                    + [s.join_group.remote(world, i + 1, self.backend, self.group, t)
                       for i, s in enumerate(samplers)], timeout=t)

    def __call__(self) -> list[int]:
        if self.method == "object_store":
            update = self.learners.call("publish")  # stored once, read by every sampler
            versions = ray.get([s.set_weights.remote(update) for s in self.samplers])
            self.last = update  # kept in the object store until the next version: see `restore`
            return versions
        refs = [self.learner.send_weights.remote(self.backend, self.group)]
        refs += [s.receive_weights.remote(self.backend, self.group) for s in self.samplers]
        return ray.get(refs)[1:]

    def restore(self, sampler) -> int:
        """Load a restarted sampler with the weights the other samplers hold: the newest
        published version, which may be older than the learner's own (asynchronous
        schedule: the learner trains on while the samplers sample). Its redone shard is
        then the one an uninterrupted run samples."""
        if self.method != "object_store" or self.last is None:
            raise RuntimeError("a restarted sampler can be given published weights only through the object store")
        return ray.get(sampler.set_weights.remote(self.last))


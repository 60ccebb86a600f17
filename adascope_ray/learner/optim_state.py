"""An optimizer's state as named CPU tensors plus JSON-able metadata, and back: how the
learner's checkpoint stores every optimizer it has (the policy's, the surrogate's). The
state of a sharded optimizer (learner.group.sharding=fsdp) is stored whole, so one
checkpoint resumes a group of any size."""
from __future__ import annotations

import torch

from .sharding import full, shard_like


def optimizer_tensors(optimizer: torch.optim.Optimizer, prefix: str) -> tuple[dict[str, torch.Tensor], dict]:
    """({f"{prefix}{i}.{key}": tensor}, {"opt_slots": ..., "param_groups": ...}). A
    sharded state is gathered: every rank of the group must call this at once."""
    opt = optimizer.state_dict()
    tensors, slots = {}, {}
    for idx, st in opt["state"].items():
        slots[str(idx)] = sorted(st)
        for key, v in st.items():
            v = full(v) if isinstance(v, torch.Tensor) else v
            tensors[f"{prefix}{idx}.{key}"] = torch.as_tensor(v).detach().cpu().clone()
    return tensors, {"opt_slots": slots, "param_groups": opt["param_groups"]}


def load_optimizer(optimizer: torch.optim.Optimizer, tensors: dict[str, torch.Tensor], meta: dict, prefix: str,
                   like: list[torch.Tensor] | None = None) -> None:
    """The inverse of optimizer_tensors. With `like` (the optimizer's parameters in its
    order), a moment shaped as its parameter becomes that parameter's shard."""
    def value(i: str, k: str) -> torch.Tensor:
        t = tensors[f"{prefix}{i}.{k}"].clone()
        return shard_like(t, like[int(i)]) if like is not None else t

    state = {int(i): {k: value(i, k) for k in keys} for i, keys in meta["opt_slots"].items()}
    optimizer.load_state_dict({"state": state, "param_groups": meta["param_groups"]})

"""An optimizer's state as named CPU tensors plus JSON-able metadata, and back: how the
learner's checkpoint stores every optimizer it has (the policy's, the surrogate's)."""
from __future__ import annotations

import torch


def optimizer_tensors(optimizer: torch.optim.Optimizer, prefix: str) -> tuple[dict[str, torch.Tensor], dict]:
    """({f"{prefix}{i}.{key}": tensor}, {"opt_slots": ..., "param_groups": ...})."""
    opt = optimizer.state_dict()
    tensors, slots = {}, {}
    for idx, st in opt["state"].items():
        slots[str(idx)] = sorted(st)
        for key, v in st.items():
            tensors[f"{prefix}{idx}.{key}"] = torch.as_tensor(v).detach().cpu().clone()
    return tensors, {"opt_slots": slots, "param_groups": opt["param_groups"]}


def load_optimizer(optimizer: torch.optim.Optimizer, tensors: dict[str, torch.Tensor], meta: dict, prefix: str) -> None:
    state = {int(i): {k: tensors[f"{prefix}{i}.{k}"].clone() for k in keys} for i, keys in meta["opt_slots"].items()}
    optimizer.load_state_dict({"state": state, "param_groups": meta["param_groups"]})

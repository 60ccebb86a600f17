"""Fully sharded data parallelism for full fine-tuning (learner.group.sharding: fsdp; no ray).

With N ranks, each rank keeps 1/N of every trainable tensor, of its gradient and of
AdamW's two moments (torch's FSDP2, `fully_shard`):

    forward / backward   each block's full weights are gathered for its pass, then freed
    backward             gradients are reduce-scattered: rank r keeps the sum over the
                         ranks of its own 1/N slice (divide factor 1: g = Σ_r g_r, as in
                         the unsharded group, ranks.py)
    optimizer step       AdamW updates each rank's slice with that rank's moments

so a denoiser of P float32 weights costs about 16 P / N bytes of training state per rank
(weights, gradient, two moments) instead of 16 P, plus one block's gathered weights.

Every forward and backward of a sharded denoiser is a collective, so every rank must run
the same number of them: `lockstep` gives each rank the same number of micro-batches,
padding a short share with a zero-weight repeat of a real pair. Weights leave the ranks
whole (`full`): publishing, exporting and checkpointing gather them, on every rank at
once. A checkpoint therefore has the unsharded layout and resumes a group of any size.
"""
from __future__ import annotations

import numpy as np
import torch


def shard_denoiser(denoiser: torch.nn.Module) -> None:
    """Shard each block of the denoiser's block lists (a UNet's down/up blocks, a
    transformer's blocks) as one unit, and the rest with the root, in place."""
    from torch.distributed.fsdp import fully_shard

    units = [block for child in denoiser.children() if isinstance(child, torch.nn.ModuleList)
             for block in child if any(p.requires_grad for p in block.parameters())]
    for unit in units + [denoiser]:
        fully_shard(unit)
        unit.set_gradient_divide_factor(1.0)  # per unit: the sum over the ranks, not their mean
        unit.set_force_sum_reduction_for_comms(True)  # plain sums: gloo has no pre-scaled reduction


def is_sharded(t: torch.Tensor) -> bool:
    from torch.distributed.tensor import DTensor

    return isinstance(t, DTensor)


def full(t: torch.Tensor) -> torch.Tensor:
    """The whole tensor of a sharded one (a collective: every rank calls it), else t."""
    return t.full_tensor() if is_sharded(t) else t


def shard_like(value: torch.Tensor, param: torch.Tensor) -> torch.Tensor:
    """A whole tensor as this rank's shard laid out like `param` (no communication:
    every rank holds the whole value); `value` itself for an unsharded param."""
    if not is_sharded(param) or value.shape != param.shape:
        return value
    from torch.distributed.tensor import distribute_tensor

    return distribute_tensor(value.to(param.device), param.device_mesh, param.placements, src_data_rank=None)


@torch.no_grad()
def assign(param: torch.Tensor, value: torch.Tensor) -> None:
    """Set a parameter from its whole value (a sharded one keeps its own slice)."""
    if is_sharded(param):
        param.to_local().copy_(shard_like(value, param).to_local())
    else:
        param.copy_(value)


def local_numel(params: list[torch.Tensor]) -> int:
    """How many values of `params` this rank holds."""
    return sum((p.to_local() if is_sharded(p) else p).numel() for p in params)


def lockstep(pairs: np.ndarray, rank: int, world: int, size: int) -> list[tuple[np.ndarray, bool]]:
    """Rank `rank`'s share of (N, 2) pairs (every world-th from rank, as ranks.py) in
    exactly M = ⌈⌈N / world⌉ / size⌉ micro-batches of at most `size` pairs, the same M
    on every rank. A micro-batch a short share cannot fill is (pairs[:1], False): a real
    pair to run with weight zero, so that this rank joins the others' collectives."""
    if len(pairs) == 0:
        return []
    share = pairs[rank::world]
    m = -(-(-(-len(pairs) // world)) // size)
    parts = np.array_split(share, m) if len(share) else [share[:0]] * m
    return [(p, True) if len(p) else (pairs[:1], False) for p in parts]

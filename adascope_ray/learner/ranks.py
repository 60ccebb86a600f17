"""A learner's place in a data-parallel group (learner.group.num_ranks; no ray).

Every rank receives the whole batch and computes the same advantages, window and pair
order (same code, same seeds, same inputs), then differentiates only its share of each
optimizer step's pairs. With g_r the gradient rank r's share contributes to the step's
mean loss (each micro-batch weighted by its size over the step's pair count),

    g = Σ_r g_r          all-reduced (sum), so every rank holds the step's full gradient
                         and takes the same optimizer step: the weights stay identical

which is the one-rank gradient up to the order of the floating-point sums. Statistics
(loss, approx_kl, clipfrac, ...) are sums over the ranks' shares in the same way.
World size 1 makes every method a no-op.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import numpy as np
import torch


@dataclass(frozen=True)
class Ranks:
    rank: int = 0
    world: int = 1

    def share(self, rows: np.ndarray) -> np.ndarray:
        """This rank's rows of an (N, ...) array: every world-th from rank."""
        return rows[self.rank :: self.world]

    def all_reduce_grads(self, params: list[torch.Tensor]) -> None:
        """Sum every parameter's gradient over the ranks (a rank whose share was empty
        contributes zeros), in one flat buffer."""
        if self.world == 1:
            return
        grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in params]
        flat = torch.cat([g.reshape(-1) for g in grads])
        torch.distributed.all_reduce(flat, op=torch.distributed.ReduceOp.SUM)
        at = 0
        for p, g in zip(params, grads):
            p.grad = flat[at : at + g.numel()].view_as(g).clone()
            at += g.numel()

    def sum(self, values: list[float], device) -> list[float]:
        if self.world == 1:
            return list(values)
        t = torch.tensor(values, dtype=torch.float64, device=device)
        torch.distributed.all_reduce(t, op=torch.distributed.ReduceOp.SUM)
        return t.tolist()

    def max(self, value: float, device) -> float:
        if self.world == 1:
            return value
        t = torch.tensor([value], dtype=torch.float64, device=device)
        torch.distributed.all_reduce(t, op=torch.distributed.ReduceOp.MAX)
        return float(t.item())

    def sum_tensor(self, t: torch.Tensor) -> torch.Tensor:
        """Element-wise sum over the ranks (each rank fills its share, zeros elsewhere)."""
        if self.world > 1:
            torch.distributed.all_reduce(t, op=torch.distributed.ReduceOp.SUM)
        return t


def join(rank: int, world: int, address: str, port: int, backend: str, timeout_s: float) -> Ranks:
    """Join the group rank 0 listens for at address:port (gloo on CPU, nccl on GPU)."""
    torch.distributed.init_process_group(backend, init_method=f"tcp://{address}:{port}", rank=rank,
                                         world_size=world, timeout=timedelta(seconds=timeout_s))
    return Ranks(rank, world)

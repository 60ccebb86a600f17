"""learner/sharding.py's lockstep: every rank of a sharded group runs the same number of
micro-batches, the real ones cover each pair exactly once, none is larger than asked,
and a short share is padded with zero-weight repeats (hand-worked cases)."""
import numpy as np
import pytest

from adascope_ray.learner.sharding import lockstep


def _pairs(n: int) -> np.ndarray:
    return np.stack([np.arange(n), np.arange(n) % 5], axis=1)  # (n, 2): (i, k)


def test_hand_worked_split():
    # 7 pairs, 2 ranks, at most 3 a micro-batch: shares of 4 (rows 0,2,4,6) and 3 (1,3,5);
    # M = ceil(ceil(7 / 2) / 3) = 2 on both ranks
    p = _pairs(7)
    r0, r1 = lockstep(p, 0, 2, 3), lockstep(p, 1, 2, 3)
    assert [mb[:, 0].tolist() for mb, _ in r0] == [[0, 2], [4, 6]]
    assert [mb[:, 0].tolist() for mb, _ in r1] == [[1, 3], [5]]
    assert all(real for _, real in r0 + r1)


def test_a_rank_with_nothing_to_do_still_runs_as_many_passes():
    p = _pairs(1)  # rank 1's share is empty: it repeats pair 0 with weight zero
    assert [(mb.tolist(), real) for mb, real in lockstep(p, 0, 2, 4)] == [([[0, 0]], True)]
    assert [(mb.tolist(), real) for mb, real in lockstep(p, 1, 2, 4)] == [([[0, 0]], False)]
    assert lockstep(_pairs(0), 1, 2, 4) == []


@pytest.mark.parametrize("n,world,size", [(1, 3, 1), (5, 3, 2), (16, 2, 3), (37, 4, 5), (64, 8, 4), (9, 2, 100)])
def test_equal_counts_and_exact_cover(n, world, size):
    p = _pairs(n)
    per_rank = [lockstep(p, r, world, size) for r in range(world)]
    assert len({len(parts) for parts in per_rank}) == 1
    real = np.concatenate([mb[:, 0] for parts in per_rank for mb, ok in parts if ok])
    assert sorted(real.tolist()) == list(range(n))
    assert max(len(mb) for parts in per_rank for mb, _ in parts) <= size
    assert all(len(mb) == 1 for parts in per_rank for mb, ok in parts if not ok)

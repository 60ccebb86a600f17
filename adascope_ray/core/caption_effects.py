"""Does a change help some captions and hurt others, or shift every caption alike?

A nested analysis of variance of paired differences (docs/evaluation.md, "Which
captions gain"). Notation: T training seeds t, S noise seeds s, C captions c, and

    d[t, s, c] = trained_t − base on caption c with noise s      (T, S, C)

modelled as  d = μ + a_c + b_tc + e_tsc  with independent zero-mean terms:

    a_c    the caption's own response to the change, shared by every training seed
           (variance σ²_a: some captions gain, others lose, whichever seed trains)
    b_tc   what one training seed did to one caption beyond that
           (σ²_b: each seed learns something of its own about a caption)
    e_tsc  the sample's luck: this noise seed's images of the two policies (σ²_e)

Steps (balanced design, every cell present):
    1. m_tc = mean_s d[t, s, c]          m_c = mean_t m_tc          m = mean_c m_c
    2. MS_e = Σ (d − m_tc)² / (T C (S − 1))
       MS_b = S Σ (m_tc − m_c)² / (C (T − 1))                     (T ≥ 2)
       MS_a = T S Σ (m_c − m)² / (C − 1)
    3. method-of-moments components (may come out negative: then read as 0):
       σ²_e = MS_e,   σ²_b = (MS_b − MS_e) / S,   σ²_a = (MS_a − MS_b) / (T S)
       (with T = 1 there is no b term: σ²_a = (MS_a − MS_e) / S)
    4. F_a = MS_a / MS_b (MS_a / MS_e when T = 1), F_b = MS_b / MS_e, each with a
       permutation p-value: the captions are shuffled independently within every
       (t, s) slice, which keeps each slice's values and breaks any link between a
       value and its caption (the null: the differences do not depend on the caption);
       p = (1 + #{F_perm ≥ F}) / (1 + permutations).

The expected mean squares (EMS) behind step 3: E MS_e = σ²_e, E MS_b = σ²_e + S σ²_b,
E MS_a = σ²_e + S σ²_b + T S σ²_a. The design needs the base samples of different
training seeds to be independent (learning.py --noise-stride): a base sample shared by
every seed puts its luck into m_c, where it reads as a caption effect.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class CaptionEffects:
    shape: tuple[int, int, int]   # (T, S, C) after dropping captions with a non-finite cell
    mean: float                   # m
    ms_residual: float            # MS_e
    ms_seed_caption: float        # MS_b (NaN when T = 1)
    ms_caption: float             # MS_a
    var_seed_caption: float       # σ²_b (NaN when T = 1)
    var_caption: float            # σ²_a
    f_caption: float              # F_a
    p_caption: float
    f_seed_caption: float         # F_b (NaN when T = 1)
    p_seed_caption: float

    @property
    def var_residual(self) -> float:  # σ²_e = MS_e (step 3)
        return self.ms_residual


def _mean_squares(d: np.ndarray) -> tuple[float, float, float]:
    """(MS_e, MS_b, MS_a) of d (T, S, C); MS_b is NaN when T = 1 (steps 1–2)."""
    T, S, C = d.shape
    m_tc = d.mean(axis=1)                                   # (T, C)
    m_c = m_tc.mean(axis=0)                                 # (C,)
    ms_e = float(((d - m_tc[:, None, :]) ** 2).sum() / (T * C * (S - 1)))
    ms_b = float(S * ((m_tc - m_c) ** 2).sum() / (C * (T - 1))) if T > 1 else float("nan")
    ms_a = float(T * S * ((m_c - m_c.mean()) ** 2).sum() / (C - 1))
    return ms_e, ms_b, ms_a


def _ratio(num: float, den: float) -> float:
    return num / den if den > 0 else float("nan")


def _f_stats(d: np.ndarray) -> tuple[float, float]:
    """(F_a, F_b) of d (step 4)."""
    return _f_of(*_mean_squares(d), one_seed=d.shape[0] == 1)


def _f_of(ms_e: float, ms_b: float, ms_a: float, one_seed: bool) -> tuple[float, float]:
    if one_seed:
        return _ratio(ms_a, ms_e), float("nan")
    return _ratio(ms_a, ms_b), _ratio(ms_b, ms_e)


def caption_effects(d, permutations: int = 2000, seed: int = 0) -> CaptionEffects:
    """The nested analysis of d (T training seeds, S noise seeds, C captions) of the module
    docstring. Captions with a non-finite value in any cell are left out (a check that does
    not apply to them); at least 2 noise seeds and 2 captions must remain."""
    d = np.asarray(d, dtype=np.float64)
    if d.ndim != 3:
        raise ValueError(f"d must be (training seeds, noise seeds, captions), got shape {d.shape}")
    d = d[:, :, np.isfinite(d).all(axis=(0, 1))]
    T, S, C = d.shape
    if T < 1 or S < 2 or C < 2:
        raise ValueError(f"need ≥ 1 training seed, ≥ 2 noise seeds and ≥ 2 captions with finite values, got {(T, S, C)}")
    ms_e, ms_b, ms_a = _mean_squares(d)
    var_b = (ms_b - ms_e) / S if T > 1 else float("nan")
    var_a = (ms_a - (ms_b if T > 1 else ms_e)) / (T * S)
    f_a, f_b = _f_of(ms_e, ms_b, ms_a, one_seed=T == 1)
    rng = np.random.default_rng(seed)
    hits_a = hits_b = 0
    for _ in range(permutations):
        perm = np.take_along_axis(d, rng.random(d.shape).argsort(axis=2), axis=2)   # (T, S, C)
        pa, pb = _f_stats(perm)
        hits_a += bool(pa >= f_a)
        hits_b += bool(pb >= f_b)
    p = lambda hits, f: (1 + hits) / (1 + permutations) if np.isfinite(f) else float("nan")  # noqa: E731
    return CaptionEffects((T, S, C), float(d.mean()), ms_e, ms_b, ms_a, var_b, var_a,
                          f_a, p(hits_a, f_a), f_b, p(hits_b, f_b))

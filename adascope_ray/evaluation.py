"""The evaluation protocol (docs/evaluation.md), shared by the in-run evaluation, the
benchmarks and the CLI (no ray).

An evaluation samples every prompt once per noise seed with the policy's current
weights: the batch of seed s holds the prompts in a fixed order, so two policies
evaluated with the same prompts and seeds see the same initial noise and the same
per-step noise draws, sample for sample. Rewards come back as (S, N) arrays, S seeds
by N prompts; two evaluations compare with `core.paired.paired_difference`.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .core.paired import PairedDifference, clustered_difference, mean_se, paired_difference
from .types import PromptBatch

EVAL_SEED_BASE = 1_000_003  # evaluation noise seed s is drawn as batch seed EVAL_SEED_BASE + s


def eval_batches(prompts: list[str], seeds: list[int], policy_version: int) -> list[PromptBatch]:
    """One batch per noise seed, the prompts in the same order in each; every row draws
    its own x_T from the seed, whatever the run's sampling.initial_noise, so that the
    same (caption, seed) has the same noise under every training config."""
    return [PromptBatch(prompts=list(prompts), group_ids=np.arange(len(prompts)), seed=EVAL_SEED_BASE + int(s),
                        policy_version=policy_version, own_starts=True) for s in seeds]


@dataclass
class Evaluation:
    """Rewards of one policy on (seed, prompt) pairs: arrays are (S, N)."""
    version: int
    prompts: list[str]
    seeds: list[int]
    total: np.ndarray
    components: dict[str, np.ndarray] = field(default_factory=dict)
    sampler_forward_rows: int = 0

    def summary(self) -> dict[str, float]:
        """Mean and SE of the reward and of each component over every sample."""
        out = {}
        for name, v in {"reward": self.total, **self.components}.items():
            out[name], out[f"{name}_se"] = mean_se(v)
        return out

    def against(self, base: "Evaluation") -> dict[str, PairedDifference]:
        """Paired gain of this evaluation over `base` (same prompts and seeds), per reward."""
        self._pairs_with(base)
        out = {"reward": paired_difference(base.total, self.total)}
        for name, v in self.components.items():
            if name in base.components:
                out[name] = paired_difference(base.components[name], v)
        return out

    def by_prompt_against(self, base: "Evaluation") -> PairedDifference:
        """The reward's paired gain over `base` with each prompt as one unit (core/paired.py's
        clustered_difference: would other prompts gain?); a prompt listed several times
        (samples_per_prompt) is one unit, and n counts prompts."""
        self._pairs_with(base)
        ids = np.broadcast_to(np.asarray(self.prompts, dtype=str), self.total.shape)   # (S, N)
        return clustered_difference(base.total, self.total, ids)

    def _pairs_with(self, base: "Evaluation") -> None:
        if base.prompts != self.prompts or base.seeds != self.seeds:
            raise ValueError("a paired comparison needs the same prompts and noise seeds on both sides")

    def to_json(self) -> dict:
        return {"version": self.version, "prompts": self.prompts, "seeds": self.seeds,
                "total": self.total.tolist(), "components": {k: v.tolist() for k, v in self.components.items()},
                "sampler_forward_rows": self.sampler_forward_rows}

    @classmethod
    def from_json(cls, d: dict) -> "Evaluation":
        nan = lambda v: np.asarray([[np.nan if x is None else x for x in row] for row in v], dtype=np.float64)  # noqa: E731
        return cls(d["version"], d["prompts"], d["seeds"], nan(d["total"]),
                   {k: nan(v) for k, v in d["components"].items()}, d.get("sampler_forward_rows", 0))


def describe_gain(first: Evaluation, last: Evaluation) -> str:
    """One line for people: the reward's paired gain of `last` over `first`, per sample and
    with each prompt as one unit, each with its SE and verdict (run summary and report)."""
    g, gp = last.against(first)["reward"], last.by_prompt_against(first)
    return (f"paired gain {g.mean:+.4f} ± {g.se:.4f} ({g.verdict()}; {g.n} samples, {len(last.seeds)} noise seeds); "
            f"each prompt one unit ± {gp.se:.4f} ({gp.verdict()}; {gp.n} prompts)")


def evaluate_sampler(sampler, score, prompts: list[str], seeds: list[int], deterministic: bool = False,
                     on_batch=None) -> tuple[Evaluation, list[np.ndarray]]:
    """Sample and score every (seed, prompt) with a plain Sampler; `score(images, prompts)`
    returns a RewardResult. Returns the evaluation and each seed's images (N, H, W, 3).
    deterministic: η = 0 sampling (Sampler.sample); on_batch() is called after each seed."""
    totals, comps, images, rows = [], {}, [], 0
    for batch in eval_batches(prompts, seeds, sampler.version):
        rollout = sampler.sample(batch, deterministic=deterministic)
        r = score(rollout.images, rollout.prompts)
        totals.append(np.asarray(r.total, np.float64))
        for k, v in r.components.items():
            comps.setdefault(k, []).append(np.asarray(v, np.float64))
        images.append(rollout.images)
        rows += rollout.sampler_forward_rows
        if on_batch is not None:
            on_batch()
    ev = Evaluation(sampler.version, list(prompts), [int(s) for s in seeds], np.stack(totals),
                    {k: np.stack(v) for k, v in comps.items()}, rows)
    return ev, images

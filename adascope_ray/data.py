"""Prompt sources and the per-iteration prompt schedule (no ray)."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .types import PromptBatch


class PromptError(ValueError):
    """An unusable prompt source; the message names the file."""


def load_prompts(data_cfg) -> list[str]:
    if data_cfg.world_train_captions:
        from .world.splits import split_captions

        return split_captions("train", data_cfg.world_train_captions, seed=0)
    if not data_cfg.prompts_file:
        return list(data_cfg.prompts)
    path = Path(data_cfg.prompts_file).expanduser()
    if not path.is_file():
        raise PromptError(f"data.prompts_file: {path} not found")
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq

        table = pq.read_table(path)
        if "prompt" not in table.column_names:
            raise PromptError(f"data.prompts_file: {path} has no 'prompt' column (has {table.column_names})")
        prompts = [str(p) for p in table.column("prompt").to_pylist() if p and str(p).strip()]
    else:
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError as err:
            raise PromptError(f"data.prompts_file: {path} is not UTF-8 text ({err.reason} at byte {err.start})") from None
        prompts = [line.strip() for line in text.splitlines() if line.strip()]
    if not prompts:
        raise PromptError(f"data.prompts_file: {path} holds no prompts")
    return prompts


def over_long(prompts: list[str], tokenizer) -> list[int]:
    """Indices of prompts longer than the tokenizer's limit (BOS and EOS included):
    the text encoder sees only their first `model_max_length` tokens."""
    limit = tokenizer.model_max_length
    lengths = [len(ids) for ids in tokenizer(list(dict.fromkeys(prompts)), truncation=False)["input_ids"]]
    long = {p for p, n in zip(dict.fromkeys(prompts), lengths) if n > limit}
    return [i for i, p in enumerate(prompts) if p in long]


class PromptSchedule:
    """Deterministic prompt order: a fresh permutation of the prompts each epoch,
    `per_iteration` prompts per iteration, `group_size` trajectories each, split
    evenly across `shards` samplers."""

    def __init__(self, prompts: list[str], per_iteration: int, group_size: int, seed: int):
        self.prompts, self.per_iteration, self.group_size, self.seed = prompts, per_iteration, group_size, seed

    def prompts_for(self, iteration: int) -> list[str]:
        n = len(self.prompts)
        out = []
        for j in range(iteration * self.per_iteration, (iteration + 1) * self.per_iteration):
            epoch, pos = divmod(j, n)
            order = np.random.default_rng([self.seed, epoch]).permutation(n)
            out.append(self.prompts[order[pos]])
        return out

    def batches(self, iteration: int, shards: int, policy_version: int,
                window: tuple[int, int] | None = None) -> list[PromptBatch]:
        """`shards` batches of this iteration's prompts × group_size; `window`: the steps
        the samplers run stochastically (window.placement = sampler), None for all."""
        prompts = self.prompts_for(iteration)
        per = len(prompts) // shards
        out = []
        for s in range(shards):
            mine = prompts[s * per : (s + 1) * per]
            out.append(PromptBatch(
                prompts=[p for p in mine for _ in range(self.group_size)],
                group_ids=np.repeat(np.arange(len(mine)), self.group_size),
                seed=int(np.random.default_rng([self.seed, iteration, s]).integers(2**31)),
                policy_version=policy_version, window=window,
            ))
        return out

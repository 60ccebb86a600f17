"""The learner group's update: one rank against two, unsharded and sharded (learner.group).

    python benchmarks/learner_group.py [--scale tiny|sd15] [--settings 1,2,2fsdp] [--updates 2] [--tag NAME]

Full fine-tuning (model.trainable=full) of a random-init denoiser on one rollout, each
setting's ranks in their own processes with one torch.distributed group over gloo (no
Ray: the code each learner actor runs). Settings:

    1       one learner, 2 threads
    2       two ranks of 1 thread, sharding none: every rank holds the whole training state
    2fsdp   two ranks of 1 thread, sharding fsdp: every rank holds half of it

`--scale sd15` is Stable Diffusion 1.5's UNet (860 M weights, benchmarks/real_size.py's
random-init build) at 256 px; `tiny` the test suite's random-init tiny UNet. For each
setting: the seconds of the last update (rank 0; the first includes AdamW's allocation),
the training state each rank holds after it (weights, gradients and AdamW moments,
counted from the tensors it holds), each rank's peak resident memory (the whole model is
loaded before it is sharded, so this includes one whole pipeline), and the weights after
the updates against the one rank's, on the first 2 000 values of every tensor, relative
to the change the one rank's updates made there. Writes learner_group_<tag>.json with
the machine, config and commit. Reports; passes nothing.
"""
from __future__ import annotations

import argparse
import multiprocessing as mp
import resource
import socket
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from common import ROOT, shown_config, write_result

from adascope_ray.config import load_config  # noqa: E402

HEAD = 2000  # values of each tensor compared across settings


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _head(learner) -> np.ndarray:
    """The first HEAD values of every trainable tensor, whole (a collective when sharded)."""
    return np.concatenate([t.reshape(-1)[:HEAD].float().cpu().numpy() for t in learner._trained().values()])


def _state_bytes(learner) -> dict[str, int]:
    def held(t):
        return (t.to_local() if hasattr(t, "to_local") else t).numel() * t.element_size()

    params = learner.params
    moments = [v for st in learner.optimizer.state.values() for k, v in st.items() if k != "step"]
    return {"weights": sum(held(p) for p in params), "gradients": sum(held(p) for p in params),  # one gradient a weight
            "adam_moments": sum(held(v) for v in moments)}


def _rank(rank: int, world: int, sharding: str, port: int, cfg, scored, updates: int, out) -> None:
    from adascope_ray.learner import Learner

    try:
        learner = Learner(cfg.model, cfg.sampling, cfg.learner.model_copy(update={
            "torch_threads": 2 // world, "group": cfg.learner.group.model_copy(update={"sharding": sharding})}),
            cfg.window, cfg.advantage)
        if world > 1:
            learner.join_group(rank, world, "127.0.0.1", port, "gloo", 3600)
        start = _head(learner)
        seconds = []
        for u in range(updates):
            t = time.perf_counter()
            fresh = replace(scored, rollout=replace(scored.rollout, policy_version=u))  # the same rollout, as new
            learner.update(u, [fresh])
            seconds.append(time.perf_counter() - t)
        end = _head(learner)
        out.put((rank, {"update_s": seconds, "state_bytes": _state_bytes(learner),
                        "peak_rss_gib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20},
                 (start, end) if rank == 0 else None))
    except BaseException as err:
        out.put((rank, {"error": f"{type(err).__name__}: {err}"}, None))
        raise
    finally:
        if torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()


def run_setting(name: str, cfg, scored, updates: int) -> tuple[dict, tuple | None]:
    world, sharding = (1, "none") if name == "1" else (2, "fsdp" if name.endswith("fsdp") else "none")
    ctx, port = mp.get_context("spawn"), _port()
    q = ctx.Queue()
    procs = [ctx.Process(target=_rank, args=(r, world, sharding, port, cfg, scored, updates, q)) for r in range(world)]
    for p in procs:
        p.start()
    got = {}
    for _ in procs:
        r, info, heads = q.get(timeout=7200)
        got[r] = (info, heads)
    for p in procs:
        p.join(120)
    errors = [g[0]["error"] for g in got.values() if "error" in g[0]]
    if errors:
        raise RuntimeError(f"setting {name}: {errors[0]}")
    per_rank = [got[r][0] for r in range(world)]
    row = {"setting": name, "ranks": world, "sharding": sharding, "update_s": per_rank[0]["update_s"],
           "state_gib_per_rank": [round(sum(i["state_bytes"].values()) / 2**30, 4) for i in per_rank],
           "state_bytes_per_rank": [i["state_bytes"] for i in per_rank],
           "peak_rss_gib_per_rank": [round(i["peak_rss_gib"], 2) for i in per_rank]}
    print(f"  {name:6s} last update {row['update_s'][-1]:8.2f} s   state per rank {row['state_gib_per_rank']} GiB   "
          f"peak RSS per rank {row['peak_rss_gib_per_rank']} GiB", flush=True)
    return row, got[0][1]


def rollout(cfg):
    """One scored rollout of iteration 0's prompts, by a sampler holding the model's weights."""
    from adascope_ray.data import PromptSchedule
    from adascope_ray.rewards import build_scorer
    from adascope_ray.rollout import Sampler
    from adascope_ray.types import RewardResult, ScoredRollout, WeightsUpdate

    sampler = Sampler(cfg.model, cfg.sampling, cfg.sampler)
    own = dict(sampler.denoiser.named_parameters())  # the model's own weights as version 0
    sampler.set_weights(WeightsUpdate(0, {n: own[n].detach().float().numpy() for n in sampler.trainable_layout}))
    batch = PromptSchedule(cfg.data.prompts, cfg.data.prompts_per_iteration, cfg.data.group_size, 0).batches(0, 1, 0)[0]
    r = sampler.sample(batch)
    rewards = build_scorer("jpeg_compressibility")(r.images, r.prompts)
    return ScoredRollout(r, RewardResult(rewards, {"jpeg_compressibility": rewards}))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--scale", choices=["tiny", "sd15"], default="tiny")
    ap.add_argument("--settings", default="1,2,2fsdp")
    ap.add_argument("--updates", type=int, default=2)
    ap.add_argument("--tag", default=None)
    a = ap.parse_args()
    config = ROOT / "configs" / "tiny_jpeg.yaml"
    overrides = ["model.trainable=full", "learner.lr=1e-4", "window.strategy=full", "sampler.torch_threads=2"]
    with tempfile.TemporaryDirectory() as work:
        if a.scale == "sd15":
            from real_size import build_sd15

            model = build_sd15(Path(work) / "sd15", "sd15")
            overrides += [f"model.path={model}", "model.resolution=256", "sampling.num_steps=4",
                          "data.prompts_per_iteration=1", "data.group_size=2", "sampler.batch_size=2",
                          "learner.micro_batch_size=2", "learner.inner_epochs=1", "learner.optimizer_steps_per_epoch=1"]
        else:
            overrides += [f"model.cache_dir={work}/models"]
        cfg = load_config(config, overrides)
        scored = rollout(cfg)
        print(f"learner group, {a.scale}: {scored.rollout.batch_size} trajectories x {cfg.sampling.num_steps} steps, "
              f"{a.updates} updates", flush=True)
        shown = [o.replace(work, "<scratch>") for o in overrides]  # no machine paths in results
        rows, heads = [], {}
        for name in a.settings.split(","):
            row, heads[name] = run_setting(name, cfg, scored, a.updates)
            rows.append(row)
    if "1" in heads:  # each setting's weights against the one rank's
        start, want = heads["1"]
        moved = float(np.linalg.norm(want - start))
        for row in rows:
            row["weights_apart_rel"] = float(np.linalg.norm(heads[row["setting"]][1] - want) / moved)
        base = next(r for r in rows if r["setting"] == "1")["update_s"][-1]
        for row in rows:
            row["update_time_ratio"] = row["update_s"][-1] / base
    for row in rows:
        print(f"  {row['setting']:6s} " + "   ".join(f"{k} {row[k]:.4g}" for k in ("update_time_ratio", "weights_apart_rel")
                                                  if k in row), flush=True)
    path = write_result(f"learner_group_{a.tag or a.scale}", {
        "scale": a.scale, "updates": a.updates, "trajectories": scored.rollout.batch_size,
        "steps": cfg.sampling.num_steps, "config": shown_config(config), "overrides": shown, "rows": rows},
        ROOT / "benchmarks" / "results" / "learner_group")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()

"""`adascope-ray eval CONFIG [overrides]`: evaluate checkpoints on one prompt set with
the same noise, paired against the first (docs/evaluation.md; no ray).

    <output_dir>/<name>/samples.jsonl   one line per image: checkpoint, prompt, seed,
                                        sample, every reward, its image file
    <output_dir>/<name>/summary.json    settings, per checkpoint and reward mean ± SE,
                                        diversity, paired differences to the first
    <output_dir>/<name>/grid.png        rows: prompts; columns: checkpoints (first seed)
    <output_dir>/<name>/images/         every image (save_images)
"""
from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import numpy as np

from .core.diversity import mean_pairwise_distance, pixel_features
from .core.paired import mean_se, paired_difference
from .eval_config import CLIP_REWARDS


def run_eval(args) -> int:
    from .checkpoints import CheckpointSpecError, resolve
    from .cli import _fail, check_reward_weights
    from .config import ConfigError, RewardsConfig
    from .data import PromptError
    from .eval_config import load_eval_config
    from .rewards.clip_family import RewardWeightsError
    from .runio import CheckpointError, RunDirError

    try:
        cfg = load_eval_config(args.config, args.overrides)
        model = cfg.model  # none configured: the first run's model is the base
        if model is None:
            model = resolve(next(s for s in cfg.checkpoints if s != "base"), None).model_cfg
        refs = [resolve(spec, model) for spec in cfg.checkpoints]
        prompts = prompt_set(cfg.prompts)
        check_reward_weights(RewardsConfig(components=cfg.rewards))
        out = _out_dir(cfg)
    except (ConfigError, CheckpointSpecError, CheckpointError, RunDirError, PromptError, RewardWeightsError,
            FileNotFoundError) as err:
        return _fail(str(err))
    results = evaluate_all(cfg, refs, prompts, out, progress=not args.no_progress)
    summary = summarise(cfg, refs, prompts, results, model)
    (out / "summary.json").write_text(json.dumps(summary, indent=1))
    print(table(summary), flush=True)
    print(f"\nadascope-ray: wrote {out / 'summary.json'}, {out / 'samples.jsonl'}, {out / 'grid.png'}", flush=True)
    return 0


def prompt_set(pcfg) -> list[str]:
    from .data import PromptError, load_prompts
    from .world.splits import split_captions

    if pcfg.world_split:
        return split_captions(pcfg.world_split, pcfg.num_prompts, seed=0)
    if pcfg.file:
        from .config import DataConfig

        try:
            prompts = load_prompts(DataConfig(prompts_file=pcfg.file))
        except PromptError as err:
            raise PromptError(str(err).replace("data.prompts_file", "prompts.file")) from None
    else:
        prompts = list(pcfg.prompts)
    return prompts[: pcfg.num_prompts]


def _out_dir(cfg) -> Path:
    from .runio import RunDirError

    root = Path(cfg.output_dir).expanduser() / cfg.name
    if root.exists() and any(root.iterdir()):
        if not cfg.overwrite:
            raise RunDirError(f"evaluation folder {root} is not empty; pick another name or pass overwrite=true")
        if not (root / "summary.json").exists() and not (root / "samples.jsonl").exists():
            raise RunDirError(f"{root} does not look like an evaluation folder; not removing it")
        shutil.rmtree(root)
    root.mkdir(parents=True)
    return root


def evaluate_all(cfg, refs, prompts: list[str], out: Path, progress: bool = True) -> list[dict]:
    """Each checkpoint: its Evaluation over (seed, prompt × sample) and per-prompt diversity."""
    from tqdm import tqdm

    from .checkpoints import load_into
    from .config import SamplerConfig, SamplingConfig
    from .evaluation import evaluate_sampler
    from .rewards.combine import CombinedReward
    from .rollout import Sampler

    k, seeds = cfg.samples_per_prompt, list(cfg.seeds)
    expanded = [p for p in prompts for _ in range(k)]
    score = CombinedReward(cfg.rewards)
    embed = _embedder(cfg, score)
    s = cfg.sampling
    sampling = SamplingConfig(num_steps=s.num_steps, guidance_scale=s.guidance_scale, eta=s.eta or 1.0)
    bar = tqdm(total=len(refs) * len(seeds), desc="eval", unit="batch", disable=not progress, file=sys.stderr)
    results = []
    with open(out / "samples.jsonl", "w", encoding="utf-8") as lines:
        for c, ref in enumerate(refs):
            bar.set_postfix_str(ref.label)
            sampler = Sampler(ref.model_cfg, sampling, SamplerConfig(batch_size=s.batch_size, torch_threads=s.torch_threads))
            load_into(sampler, ref)
            ev, images = evaluate_sampler(sampler, score, expanded, seeds, deterministic=s.eta == 0, on_batch=bar.update)
            stacked = np.stack(images)                                              # (S, N·k, H, W, 3)
            per_prompt = stacked.reshape(len(seeds), len(prompts), k, *stacked.shape[2:]).swapaxes(0, 1)  # (N, S, k, H, W, 3)
            flat = per_prompt.reshape(len(prompts), len(seeds) * k, *per_prompt.shape[3:])
            diversity = mean_pairwise_distance(np.stack([embed(f) for f in flat]), "cosine" if embed.clip else "rms")
            results.append({"evaluation": ev, "diversity": diversity, "images": per_prompt[:, 0, 0],
                            "scheduler": type(sampler.pipe.scheduler).__name__, "policy": type(sampler.policy).__name__})
            _write_samples(lines, out, c, ref, ev, images, k, cfg.save_images)
            del sampler
    bar.close()
    _grid(out / "grid.png", refs, prompts, results, cfg.grid_prompts)
    return results


class _Embed:
    """Features for diversity: a CLIP reward's image embedding, or pixel averages."""

    def __init__(self, clip_embedder=None):
        self.clip = clip_embedder

    def __call__(self, images: np.ndarray) -> np.ndarray:
        if self.clip is None:
            return pixel_features(images)
        return self.clip.image(images).cpu().numpy()


def _clip_reward(cfg) -> str | None:
    """The reward whose image embedder diversity uses; None: pixel averages."""
    name = next((c.name for c in cfg.rewards if c.name in CLIP_REWARDS), None)
    return None if cfg.diversity.embedding == "pixels" else name


def _embedder(cfg, score) -> _Embed:
    name = _clip_reward(cfg)
    return _Embed(next(sc.clip for n, _, sc in score.parts if n == name) if name else None)


def _safe(label: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in label)


def _write_samples(lines, out: Path, c: int, ref, ev, images: list[np.ndarray], k: int, save: bool) -> None:
    from PIL import Image

    folder = out / "images" / f"{c}_{_safe(ref.label)}"
    if save:
        folder.mkdir(parents=True, exist_ok=True)
    for si, seed in enumerate(ev.seeds):
        for j, prompt in enumerate(ev.prompts):
            name = f"s{seed}_p{j // k:03d}_{j % k}.png"
            if save:
                Image.fromarray(images[si][j]).save(folder / name)
            row = {"checkpoint": ref.label, "prompt": prompt, "prompt_index": j // k, "seed": seed, "sample": j % k,
                   "reward": _f(ev.total[si, j]), **{n: _f(v[si, j]) for n, v in ev.components.items()},
                   "image": str((folder / name).relative_to(out)) if save else None}
            lines.write(json.dumps(row) + "\n")


def _f(v) -> float | None:
    v = float(v)
    return v if np.isfinite(v) else None


def _grid(path: Path, refs, prompts: list[str], results: list[dict], rows: int) -> None:
    """Rows: the first prompts; columns: the checkpoints, each its first seed's first sample."""
    from .viz import image_grid

    n = min(rows, len(prompts))
    if n == 0:
        return
    k = results[0]["evaluation"].total.shape[1] // len(prompts)  # samples per prompt
    cells = [(p, c) for p in range(n) for c in range(len(refs))]
    images = np.stack([results[c]["images"][p] for p, c in cells])
    rewards = np.array([results[c]["evaluation"].total[0, p * k] for p, c in cells])
    image_grid(images, [prompts[p] for p, _ in cells], rewards, len(refs), max_rows=n,
               column_labels=[r.label for r in refs]).save(path)


def summarise(cfg, refs, prompts: list[str], results: list[dict], model_cfg) -> dict:
    """Settings, and per checkpoint: each reward's mean ± SE (trained on or not),
    diversity, and the paired difference to the first checkpoint."""
    base = results[0]
    rows = []
    for ref, res in zip(refs, results):
        ev = res["evaluation"]
        rewards = {}
        for name, values in {"reward": ev.total, **ev.components}.items():
            m, se = mean_se(values)
            top = name.split("/")[0]
            rewards[name] = {"mean": m, "se": se,
                             "trained_on": None if ref.folder is None or name == "reward" else top in ref.trained_rewards}
        div_m, div_se = mean_se(res["diversity"])
        row = {"label": ref.label, "folder": None if ref.folder is None else str(ref.folder), "kind": ref.kind,
               "trained_rewards": list(ref.trained_rewards), "rewards": rewards,
               "diversity": {"mean": div_m, "se": div_se}, "vs_reference": {}, "vs_reference_by_prompt": None}
        if res is not base:
            d = ev.by_prompt_against(base["evaluation"])
            row["vs_reference_by_prompt"] = {"mean": d.mean, "se": d.se, "n": d.n, "verdict": d.verdict()}
            for name, d in ev.against(base["evaluation"]).items():
                row["vs_reference"][name] = {"mean": d.mean, "se": d.se, "n": d.n, "verdict": d.verdict()}
            d = paired_difference(base["diversity"], res["diversity"])
            row["vs_reference"]["diversity"] = {"mean": d.mean, "se": d.se, "n": d.n, "verdict": d.verdict()}
        rows.append(row)
    s = cfg.sampling
    return {
        "settings": {"model": model_cfg.path, "resolution": model_cfg.resolution, "scheduler": base["scheduler"],
                     "policy": base["policy"], "num_steps": s.num_steps, "guidance_scale": s.guidance_scale,
                     "eta": s.eta, "deterministic": s.eta == 0, "seeds": list(cfg.seeds),
                     "samples_per_prompt": cfg.samples_per_prompt, "prompts": cfg.prompts.model_dump(mode="json"),
                     "num_prompts": len(prompts), "samples_per_checkpoint": len(prompts) * len(cfg.seeds) * cfg.samples_per_prompt,
                     "rewards": [c.model_dump(mode="json", exclude_defaults=True) for c in cfg.rewards],
                     "diversity": f"1 - cosine of {_clip_reward(cfg)} image embeddings" if _clip_reward(cfg)
                     else "RMS distance of 16x16 pixel averages"},
        "reference": refs[0].label,
        "checkpoints": rows,
    }


def table(summary: dict) -> str:
    """The printed table: one row per reward, check and diversity; per checkpoint its
    mean ± SE and, after the reference, the paired difference ± SE with its verdict.
    A reward some run did not train on (out-of-domain for it) is marked *."""
    ck = summary["checkpoints"]
    names = [n for n in ck[0]["rewards"] if "/" not in n] + [n for n in ck[0]["rewards"] if "/" in n] + ["diversity"]

    def cells(row, n):
        v = row["diversity"] if n == "diversity" else row["rewards"][n]
        out = [f"{v['mean']:.4f} ± {v['se']:.4f}"]
        d = row["vs_reference"].get(n)
        if row is not ck[0]:
            out.append(f"{d['mean']:+.4f} ± {d['se']:.4f} {d['verdict']}" if d else "")
        return out

    ood = lambda n: n != "diversity" and any(r["rewards"][n].get("trained_on") is False for r in ck)  # noqa: E731
    head = [""] + [x for i, r in enumerate(ck) for x in ([r["label"]] if i == 0 else [r["label"], "paired difference"])]
    body = [[n + (" *" if ood(n) else "")] + [c for r in ck for c in cells(r, n)] for n in names]
    widths = [max(len(str(line[j])) for line in [head, *body]) for j in range(len(head))]
    fmt = lambda line: "  ".join(str(c).ljust(w) for c, w in zip(line, widths)).rstrip()  # noqa: E731
    st = summary["settings"]
    lines = [f"{st['samples_per_checkpoint']} samples per checkpoint ({st['num_prompts']} prompts × "
             f"{len(st['seeds'])} noise seeds × {st['samples_per_prompt']}), {st['num_steps']} steps, CFG "
             f"{st['guidance_scale']}, η {st['eta']}{' (deterministic)' if st['deterministic'] else ''}; "
             f"differences paired with {summary['reference']}, 'better'/'worse' beyond 2 SE", "", fmt(head),
             *map(fmt, body)]
    for r in ck[1:]:
        d = r["vs_reference_by_prompt"]
        lines.append(f"reward, each prompt one unit (would other prompts gain?), {r['label']}: "
                     f"{d['mean']:+.4f} ± {d['se']:.4f} {d['verdict']} ({d['n']} prompts)")
    if any(ood(n) for n in names):
        lines.append("* scored, not trained on by a run here (out-of-domain)")
    return "\n".join(lines)

"""What every benchmark records beside its numbers: machine, commit, date."""
from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


CLIP_SIZES = {  # vision / text towers of released CLIPs, random weights
    "base32": {"vision_config": {"image_size": 224, "patch_size": 32, "hidden_size": 768, "intermediate_size": 3072,
                                 "num_hidden_layers": 12, "num_attention_heads": 12},
               "text_config": {"hidden_size": 512, "intermediate_size": 2048, "num_hidden_layers": 12,
                               "num_attention_heads": 8}, "projection_dim": 512},
    "large14": {"vision_config": {"image_size": 224, "patch_size": 14, "hidden_size": 1024, "intermediate_size": 4096,
                                  "num_hidden_layers": 24, "num_attention_heads": 16},
                "text_config": {"hidden_size": 768, "intermediate_size": 3072, "num_hidden_layers": 12,
                                "num_attention_heads": 12}, "projection_dim": 768},
    "h14": {"vision_config": {"image_size": 224, "patch_size": 14, "hidden_size": 1280, "intermediate_size": 5120,
                              "num_hidden_layers": 32, "num_attention_heads": 16},
            "text_config": {"hidden_size": 1024, "intermediate_size": 4096, "num_hidden_layers": 24,
                            "num_attention_heads": 16}, "projection_dim": 1024},
}


def commit() -> str:
    """ADASCOPE_COMMIT when set (a copy of the tree run elsewhere), else the checkout's HEAD."""
    if os.environ.get("ADASCOPE_COMMIT"):
        return os.environ["ADASCOPE_COMMIT"]
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    except OSError:
        return "unknown"


def machine() -> dict:
    info = {"platform": platform.platform(), "processor": platform.processor(), "cpus": os.cpu_count(),
            "python": platform.python_version()}
    torch = sys.modules.get("torch")  # only when the benchmark already uses it
    if torch is not None:
        # the kernels' instruction set decides floating-point rounding: runs of one seed on
        # machines that differ here drift apart (benchmarks/README.md, the default re-run)
        info["torch"] = torch.__version__
        info["cpu_capability"] = torch.backends.cpu.get_cpu_capability()
        if torch.cuda.is_available():
            info["gpu"] = torch.cuda.get_device_name(0)
    return info


def shown_config(path: str | Path) -> str:
    """A config's path as results record it: relative to the project, else its file name."""
    p = Path(path).resolve()
    return str(p.relative_to(ROOT)) if p.is_relative_to(ROOT) else p.name


def write_result(name: str, payload: dict, out_dir: str | Path | None = None) -> Path:
    """benchmarks/results/<name>.json with machine, commit and date added."""
    dest = Path(out_dir) if out_dir else ROOT / "benchmarks" / "results"
    dest.mkdir(parents=True, exist_ok=True)
    path = dest / f"{name}.json"
    path.write_text(json.dumps({"machine": machine(), "commit": commit(), "date": time.strftime("%Y-%m-%d"), **payload},
                               indent=1))
    return path


class InProcessLoop:
    """The training loop's parts without Ray: the plain Sampler, the reward scorers and
    the Learner of one config, the sampler holding the learner's first weights."""

    def __init__(self, cfg):
        from adascope_ray.data import PromptSchedule, load_prompts
        from adascope_ray.learner import Learner
        from adascope_ray.rewards.combine import CombinedReward
        from adascope_ray.rollout import Sampler

        self.learner = Learner(cfg.model, cfg.sampling, cfg.learner, cfg.window, cfg.advantage, cfg.rewards)
        self.reward = CombinedReward(cfg.rewards.components)
        sem = cfg.window.semantic
        embed = self.reward.embedder(sem.reward) if sem.source == "embedding" else None
        score = (lambda images, prompts: self.reward(images, prompts).total) if cfg.window.reward_trace.enabled else None
        self.sampler = Sampler(cfg.model, cfg.sampling, cfg.sampler, pool=cfg.window.pool, semantic=sem, embed=embed,
                               reward_trace=cfg.window.reward_trace, score=score)
        self.sampler.set_weights(self.learner.publish())
        self.prompts = load_prompts(cfg.data)
        self.schedule = PromptSchedule(self.prompts, cfg.data.prompts_per_iteration, cfg.data.group_size, cfg.run.seed)

    def sample(self, it: int):
        """Iteration it's rollout; under window.placement = sampler only the window the
        learner published with its last update is sampled with noise, as the controller does."""
        return self.sampler.sample(self.schedule.batches(it, 1, self.sampler.version, self.learner.next_window)[0])

    def score(self, rollout):
        """The rollout with its weighted reward and components, as the Serve app combines them."""
        from adascope_ray.types import ScoredRollout

        return ScoredRollout(rollout, self.reward(rollout.images, rollout.prompts))

    def publish(self) -> None:
        self.sampler.set_weights(self.learner.publish())

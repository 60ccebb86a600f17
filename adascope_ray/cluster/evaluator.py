"""In-run evaluation (docs/evaluation.md): the samplers draw fixed prompts with fixed
noise under the current weights; each evaluation is compared, paired, with the one
before training. Results go to <run>/eval.jsonl (one line per evaluation, every
sample's reward, so a resumed run or a report can pair them again) and to the
iteration's metrics row as eval/* fields."""
from __future__ import annotations

import numpy as np

from ..core.stopping import StopDecision, stop_decision
from ..evaluation import Evaluation, eval_batches
from ..world.splits import split_captions


def eval_prompts(cfg) -> list[str]:
    e = cfg.eval
    return list(e.prompts) if e.prompts else split_captions(e.world_split, e.num_prompts, seed=0)


class InRunEvaluator:
    def __init__(self, cfg, run_dir):
        self.cfg, self.stop_cfg, self.run_dir = cfg.eval, cfg.run.stop, run_dir
        self.prompts = eval_prompts(cfg)
        self.base: Evaluation | None = None
        self.history: list[tuple[int, np.ndarray]] = []  # (updates, rewards (S, N)) of every evaluation
        self.decision: StopDecision | None = None

    @property
    def stops(self) -> bool:
        return bool(self.stop_cfg.patience) or self.stop_cfg.guard_margin is not None

    @property
    def best_updates(self) -> int | None:
        """Updates of the best evaluation so far (highest mean reward)."""
        return self.history[self.decision.best][0] if self.decision else None

    def due(self, updates: int, last: bool) -> bool:
        return bool(self.cfg.every) and (updates % self.cfg.every == 0 or last)

    def resume(self, updates: int) -> None:
        """Keep the evaluations made up to `updates` (the rest is redone); the first is the base."""
        kept = self.run_dir.truncate_evals(updates)
        self.base = Evaluation.from_json(kept[0]) if kept else None
        self.history = [(int(e["updates"]), Evaluation.from_json(e).total) for e in kept]
        self._decide()

    def _decide(self) -> None:
        if self.history:
            s = self.stop_cfg
            self.decision = stop_decision([h for _, h in self.history], s.patience or None, s.guard_margin)

    def run(self, updates: int, version: int, call) -> dict:
        """Evaluate with `call(batches, grid_prompts) -> per-batch results` (the samplers);
        returns the eval/* fields of the metrics row."""
        seeds = list(self.cfg.seeds)
        results = call(eval_batches(self.prompts, seeds, version), self.cfg.grid_prompts)
        comps = {k: np.stack([r["components"][k] for r in results]).astype(np.float64) for k in results[0]["components"]}
        ev = Evaluation(version, self.prompts, seeds, np.stack([r["total"] for r in results]).astype(np.float64),
                        comps, sum(int(r["rows"]) for r in results))
        self.run_dir.append_eval({"updates": updates, **ev.to_json()})
        if self.base is None:
            self.base = ev
        self.history.append((updates, ev.total))
        self._decide()
        if self.cfg.grid_prompts:
            self._grid(updates, results, ev)
        s, gain, by_prompt = ev.summary(), ev.against(self.base), ev.by_prompt_against(self.base)
        row = {"eval/reward": s["reward"], "eval/reward_se": s["reward_se"], "eval/samples": int(ev.total.size),
               "eval/gain": gain["reward"].mean, "eval/gain_se": gain["reward"].se,
               "eval/verdict": gain["reward"].verdict(), "eval/gain_by_prompt_se": by_prompt.se,
               "eval/verdict_by_prompt": by_prompt.verdict(), "eval/cost_fwd_equiv": ev.sampler_forward_rows,
               "eval/best_updates": self.best_updates, "eval/stale": self.decision.stale}
        row.update({f"eval/{k}": s[k] for k in ev.components})
        return row

    def _grid(self, updates: int, results: list[dict], ev: Evaluation) -> None:
        """Rows: the first grid prompts; columns: the noise seeds. The same cells at every evaluation."""
        n = min(self.cfg.grid_prompts, len(self.prompts))
        images = np.stack([results[s]["images"][p] for p in range(n) for s in range(len(results))])
        rewards = np.array([ev.total[s, p] for p in range(n) for s in range(len(results))])
        prompts = [self.prompts[p] for p in range(n) for _ in results]
        self.run_dir.save_grid(updates, images, prompts, rewards, len(results), prefix="eval")

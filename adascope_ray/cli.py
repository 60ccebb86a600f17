"""adascope-ray command line.

    adascope-ray train CONFIG [section.field=value ...] [--address ADDR]
    adascope-ray eval EVAL_CONFIG [section.field=value ...]   (docs/evaluation.md)
    adascope-ray report RUN_DIR [--out PATH]

With no address (flag, cluster.address or RAY_ADDRESS) a local Ray cluster is
started and stopped by the command. Config, prompt and run-folder problems exit
with code 2 before any actor starts.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import signal
import sys
import threading
import time
from pathlib import Path

EXIT_BAD_INPUT = 2
EXIT_RUN_FAILED = 3


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="adascope-ray", description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="command", required=True)
    t = sub.add_parser("train", help="train a diffusion model with RL on Ray")
    t.add_argument("config", help="YAML config (see configs/)")
    t.add_argument("overrides", nargs="*", help="dotted overrides, e.g. learner.lr=1e-4")
    t.add_argument("--address", default=None, help="Ray cluster to join (default: RAY_ADDRESS, else start a local one)")
    t.add_argument("--no-progress", action="store_true", help="no progress bar")
    t.add_argument("--resume", default=None, metavar="RUN_DIR",
                   help="continue the run in RUN_DIR from its newest checkpoint (same config; run.iterations may grow)")
    e = sub.add_parser("eval", help="evaluate checkpoints on a prompt set, paired (no Ray needed)")
    e.add_argument("config", help="evaluation YAML (see configs/eval/)")
    e.add_argument("overrides", nargs="*", help="dotted overrides, e.g. seeds=[0,1]")
    e.add_argument("--no-progress", action="store_true", help="no progress bar")
    r = sub.add_parser("report", help="write a run's report.html (also for a running or stopped run)")
    r.add_argument("run_dir", help="the run folder")
    r.add_argument("--out", default=None, help="where to write the page (default: RUN_DIR/report.html)")
    v = sub.add_parser("validate", help="check configs and exit")
    v.add_argument("configs", nargs="+")
    return p


def _fail(msg: str) -> int:
    print(f"adascope-ray: {msg}", file=sys.stderr)
    return EXIT_BAD_INPUT


def preflight(cfg, local: bool = True):
    """Everything that can be checked before Ray starts. Reward weights are checked
    only for a local run (on a cluster, the replicas' nodes are what matters; a
    missing path there fails the app's deployment with the same message)."""
    from .data import PromptError, load_prompts, over_long
    from .models.loader import BUILTINS, resolve_model_path

    prompts = load_prompts(cfg.data)
    if cfg.run.tensorboard:
        from .tensorboard_log import require_tensorboard

        require_tensorboard()
    if any(c.name == "ocr" for c in cfg.rewards.components):
        from .rewards.ocr import quoted_text

        bad = next((p for p in prompts if quoted_text(p) is None), None)
        if bad is not None:
            raise PromptError(f"rewards: 'ocr' needs quoted text in every prompt; data has {bad!r}")
    if cfg.model.path not in BUILTINS:
        resolve_model_path(cfg.model)
    if local and cfg.rewards.deploy != "attach":
        check_reward_weights(cfg.rewards)
    long = over_long(prompts, prompt_tokenizer(cfg.model))
    if long:
        print(f"adascope-ray: warning: {len(long)} of {len(prompts)} prompts exceed the text encoder's "
              "token limit and are truncated, e.g. " + repr(prompts[long[0]][:80] + "…"), file=sys.stderr, flush=True)
    return prompts


def check_reward_weights(rewards_cfg) -> None:
    from .config import MODEL_REWARDS
    from .rewards.clip_family import RewardWeightsError, _folder

    for c in rewards_cfg.components:
        if c.name == "hpsv2":
            for field, f in (("path", c.path), ("open_clip_config", c.open_clip_config)):
                if f and not Path(f).expanduser().is_file():
                    raise RewardWeightsError(f"reward 'hpsv2': {field} {f} not found")
        elif c.name == "ocr":
            from .rewards.ocr import find_tesseract

            find_tesseract(c.path)
        elif c.name in MODEL_REWARDS:
            _folder(c.name, "path", c.path)
            _folder(c.name, "processor_path", c.processor_path or c.path)
        if c.head_path and not Path(c.head_path).expanduser().is_file():
            raise RewardWeightsError(f"reward {c.name!r}: head_path {c.head_path} not found")


def prompt_tokenizer(model_cfg):
    """The tokenizer the model's text encoder uses (offline)."""
    import tempfile

    from transformers import CLIPTokenizer, logging as tlog

    from .models.loader import BUILTINS, resolve_model_path
    from .models.tokenizer import build_clip_tokenizer

    tlog.set_verbosity_error()  # the length warning is ours
    if model_cfg.path in BUILTINS:
        with tempfile.TemporaryDirectory() as tmp:
            return build_clip_tokenizer(tmp)
    return CLIPTokenizer.from_pretrained(str(resolve_model_path(model_cfg) / "tokenizer"), local_files_only=True)


def open_run_dir(cfg, resume_arg: str | None):
    """The run folder and, when resuming, (iteration, LearnerState) from its newest
    checkpoint. A fresh run never overwrites a folder unless run.overwrite is set."""
    from .config import ConfigError, load_config, resume_mismatches
    from .runio import RunDir, RunDirError

    root = Path(cfg.run.output_dir).expanduser() / cfg.run.name
    if resume_arg is None and cfg.run.resume == "auto" and (root / "config.yaml").is_file() \
            and RunDir(root).latest_resumable() is not None:
        resume_arg = str(root)
    if resume_arg is None:
        return RunDir.create(cfg.run.output_dir, cfg.run.name, cfg.run.overwrite), None
    run_dir = RunDir.existing(resume_arg)
    changed = resume_mismatches(load_config(run_dir.root / "config.yaml"), cfg)
    if changed:
        raise ConfigError(f"--resume {run_dir.root}: the config differs from the run's in fields that shape "
                          "training:\n  " + "\n  ".join(changed))
    ckpt = run_dir.latest_resumable()
    if ckpt is None:  # stopped before its first checkpoint: start again in the same folder
        print(f"adascope-ray: {run_dir.root} has no checkpoint yet; starting it again from iteration 0", flush=True)
        return run_dir, (0, None)
    iteration, state = run_dir.load_resume(ckpt)
    if iteration > cfg.run.iterations:
        raise ConfigError(f"--resume: the checkpoint is at iteration {iteration}, beyond run.iterations={cfg.run.iterations}")
    print(f"adascope-ray: resuming {run_dir.root} from {ckpt.name} (iteration {iteration}, weights v{state.version})", flush=True)
    return run_dir, (iteration, state)


def train(args) -> int:
    from .config import ConfigError, load_config
    from .data import PromptError
    from .runio import CheckpointError, RunDirError
    from .tensorboard_log import TensorBoardMissing

    try:
        cfg = load_config(args.config, args.overrides)
        address = args.address or cfg.cluster.address or os.environ.get("RAY_ADDRESS") or None
        prompts = preflight(cfg, local=address is None)
        run_dir, resume = open_run_dir(cfg, args.resume)
    except (ConfigError, PromptError, RunDirError, CheckpointError, FileNotFoundError, TensorBoardMissing) as err:
        return _fail(str(err))

    from .cluster.controller import Controller, RunFailed
    from .cluster.runtime import ClusterUnreachable, connect, disconnect
    from .cluster.serve_app import RewardAppError

    t0 = time.perf_counter()
    print(f"adascope-ray: run folder {run_dir.root}; "
          f"{'joining Ray at ' + address if address else 'starting a local Ray cluster'}", flush=True)
    # `ray job stop` sends SIGTERM: leave through `finally` so the run's actors and
    # reward app are removed instead of outliving the job
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    started = False
    try:
        started = connect(cfg.cluster, address)
        rows = Controller(cfg, run_dir, prompts, progress=not args.no_progress, resume=resume).run()
    except (RewardAppError, ClusterUnreachable) as err:
        return _fail(str(err))
    except RunFailed as err:
        ckpts = sorted((run_dir.root / "checkpoints").glob("step_*"))
        command = " ".join(["adascope-ray train", args.config, *args.overrides, "--resume", str(run_dir.root)])
        how = (f"continue from {ckpts[-1].name} with:\n  {command}" if ckpts else
               "no checkpoint was written yet (set run.checkpoint_every to keep progress)")
        print(f"adascope-ray: run stopped: {err}\n{how}", file=sys.stderr, flush=True)
        return EXIT_RUN_FAILED
    finally:
        if started:
            disconnect()
    _summary(run_dir, rows, time.perf_counter() - t0)
    return 0


def _summary(run_dir, rows: list[dict], wall: float) -> None:
    from .evaluation import Evaluation, describe_gain
    from .charts import reward_chart, window_heatmap
    from .report import write_report

    its = [r["iteration"] for r in rows]
    # metrics.jsonl writes a non-finite value as null: a resumed run's earlier rows may hold None
    reward = [math.nan if r["reward_mean"] is None else float(r["reward_mean"]) for r in rows]
    evals = [(e["updates"], Evaluation.from_json(e)) for e in run_dir.read_evals()]
    reward_chart(run_dir.root / "reward.png", its, reward, [{"updates": u, **ev.summary()} for u, ev in evals])
    window_heatmap(run_dir.root / "window.png", rows)
    report = write_report(run_dir.root)
    first, last = reward[0], rows[-1]
    k = min(5, len(rows))
    head, tail = _finite_mean(reward[:k]), _finite_mean(reward[-k:])
    ckpts = sorted((run_dir.root / "checkpoints").glob("step_*"))
    best = run_dir.root / "checkpoints" / "best"
    stopped = run_dir.root / "stopped.json"
    early = ""
    if stopped.exists():
        st = json.loads(stopped.read_text())
        why = {"saturated": "the evaluation reward's gain saturated", "guard": "the evaluation reward fell below its best"}
        early = (f"  stopped      after {st['updates']} of {st['iterations_planned']} iterations: "
                 f"{why.get(st['reason'], st['reason'])}; {st['saved_iterations']} iterations "
                 f"(~{st['saved_cost_fwd_equiv']} forward-pass units) not spent\n")
    held_out = ""
    if len(evals) > 1:
        (u0, first_ev), (u1, last_ev) = evals[0], evals[-1]
        held_out = (f"  held-out     {first_ev.summary()['reward']:.4f} after {u0} updates -> "
                    f"{last_ev.summary()['reward']:.4f} after {u1}: {describe_gain(first_ev, last_ev)}\n")
    print(f"\nrun finished in {wall:.0f} s: {len(rows)} iterations\n"
          f"  train reward first {first:.4f}  last {reward[-1]:.4f}"
          f"  (mean of first {k}: {head:.4f}, last {k}: {tail:.4f})\n{held_out}"
          f"  window       start {last['window_start']:.1f}, length {last['window_length']:.1f} of {len(last['window_hist'])} steps\n"
          f"  cost         {last['cost_fwd_equiv']} forward-pass units per iteration\n"
          f"  metrics      {run_dir.root / 'metrics.jsonl'}\n"
          f"  reward curve {run_dir.root / 'reward.png'}\n"
          f"  window map   {run_dir.root / 'window.png'}\n"
          f"  report       {report}\n"
          f"  samples      {run_dir.root / 'samples'}\n"
          f"{early}"
          f"  checkpoint   {ckpts[-1] if ckpts else '(none)'}"
          + (f"\n  best         {best} (weights of the best evaluation, after "
             f"{json.loads((best / 'trainer_state.json').read_text())['iteration']} updates)" if best.exists() else ""),
          flush=True)


def _finite_mean(values: list[float]) -> float:
    """Mean of the finite values (NaN when there are none)."""
    kept = [v for v in values if math.isfinite(v)]
    return sum(kept) / len(kept) if kept else math.nan


def report(args) -> int:
    from .report import ReportError, write_report

    try:
        print(f"adascope-ray: wrote {write_report(args.run_dir, args.out)}")
    except ReportError as err:
        return _fail(str(err))
    return 0


def validate(args) -> int:
    from .config import ConfigError, load_config

    bad = 0
    for path in args.configs:
        try:
            load_config(path)
            print(f"{path}: ok")
        except ConfigError as err:
            print(str(err), file=sys.stderr)
            bad += 1
    return EXIT_BAD_INPUT if bad else 0


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    parser = _parser()
    args, extra = parser.parse_known_args(argv)  # overrides may follow flags
    if extra and (args.command not in ("train", "eval") or any(e.startswith("-") for e in extra)):
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    if extra:
        args.overrides = list(args.overrides) + extra
    if args.command == "eval":
        from .eval_cli import run_eval

        return run_eval(args)
    return {"train": train, "report": report, "validate": validate}[args.command](args)


if __name__ == "__main__":
    sys.exit(main())

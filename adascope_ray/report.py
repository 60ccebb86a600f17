"""A run's report: <run>/report.html, one self-contained page (images embedded), from
what the run folder holds (no ray). Written at the end of a run and by

    adascope-ray report RUN_DIR [--out PATH]

at any time, also for a running or stopped run: it shows what has been logged.

Sections (each a <section id=...>): summary, reward, components, window, cost,
timings, throughput, grids, config.
"""
from __future__ import annotations

import base64
import functools
import html
import io
import json
import math
from pathlib import Path

import numpy as np

from . import charts
from .evaluation import Evaluation, describe_gain

PHASES = ("rollout", "update", "drain", "publish", "evaluate", "log")  # the controller's phases, in order

_CSS = """body{font-family:system-ui,sans-serif;margin:24px auto;max-width:1100px;color:#1b1f24}
h1{font-size:22px}h2{font-size:17px;border-bottom:1px solid #d0d7de;padding-bottom:4px;margin-top:28px}
table{border-collapse:collapse;font-size:13px}td,th{border:1px solid #d0d7de;padding:3px 8px;text-align:left;white-space:nowrap}
img{max-width:100%;display:block;margin:6px 0}figure{margin:8px 0}figcaption{font-size:12px;color:#57606a}
pre{background:#f6f8fa;padding:8px;font-size:12px;overflow:auto}.empty{color:#57606a;font-style:italic}
.scroll{overflow-x:auto}.row{display:flex;flex-wrap:wrap;gap:14px;align-items:flex-start}.row img{max-width:none}"""


class ReportError(ValueError):
    """The folder is not a run folder."""


def write_report(run_root: str | Path, out: str | Path | None = None) -> Path:
    root = Path(run_root).expanduser()
    if not (root / "config.yaml").is_file():
        raise ReportError(f"{root}: not a run folder (no config.yaml)")
    dest = Path(out) if out else root / "report.html"
    from .config import ConfigError

    try:
        page = render(RunData.read(root))
    except ConfigError as err:
        raise ReportError(f"{root}: its config.yaml does not load: {err}") from None
    tmp = dest.with_name(f".{dest.name}.tmp")
    tmp.write_text(page, encoding="utf-8")
    tmp.replace(dest)  # a reader never sees half a page
    return dest


class RunData:
    """What a report needs from the run folder."""

    def __init__(self, root: Path, config_text: str, rows: list[dict], evals: list[tuple[int, Evaluation]],
                 stopped: dict | None):
        self.root, self.config_text, self.rows, self.evals, self.stopped = root, config_text, rows, evals, stopped

    @classmethod
    def read(cls, root: Path) -> "RunData":
        from .runio import RunDir

        run = RunDir(root)
        stopped = json.loads((root / "stopped.json").read_text()) if (root / "stopped.json").exists() else None
        evals = [(int(e["updates"]), Evaluation.from_json(e)) for e in run.read_evals()]
        return cls(root, (root / "config.yaml").read_text(), run.read_metrics(), evals, stopped)

    @functools.cached_property
    def config(self):
        from .config import load_config

        return load_config(self.root / "config.yaml")

    def series(self, key: str) -> list[float]:
        """A metrics field per iteration (NaN where a row lacks it or holds null)."""
        return [_num(r.get(key)) for r in self.rows]


def _num(v) -> float:
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else math.nan


def _png(draw, *args, **kwargs) -> str:
    buf = io.BytesIO()
    draw(buf, *args, **kwargs)
    return _data_uri(buf.getvalue())


def _data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode()


def _img(uri: str, alt: str, caption: str = "") -> str:
    cap = f"<figcaption>{html.escape(caption)}</figcaption>" if caption else ""
    return f'<figure><img src="{uri}" alt="{html.escape(alt)}">{cap}</figure>'


def _empty(what: str) -> str:
    return f'<p class="empty">{html.escape(what)}</p>'


def _table(header: list[str], rows: list[list]) -> str:
    th = "".join(f"<th>{html.escape(str(h))}</th>" for h in header)
    tr = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in r) + "</tr>" for r in rows)
    return f"<div class='scroll'><table><tr>{th}</tr>{tr}</table></div>"


# ---- sections -------------------------------------------------------------------
def summary(d: RunData) -> str:
    cfg = d.config
    n, planned = len(d.rows), cfg.run.iterations
    state = ("stopped early: " + d.stopped["reason"] if d.stopped else
             "finished" if n >= planned else f"{n} of {planned} iterations logged (running or stopped)")
    facts = [["run", cfg.run.name], ["state", state], ["model", cfg.model.path],
             ["window strategy", cfg.window.strategy], ["rewards", ", ".join(f"{c.name} × {c.weight:g}" for c in cfg.rewards.components)],
             ["batch", f"{cfg.data.prompts_per_iteration} prompts × {cfg.data.group_size} samples, {cfg.sampling.num_steps} steps"]]
    if d.rows:
        tr = d.series("reward_mean")
        facts.append(["training reward", f"first {tr[0]:.4f}, last {tr[-1]:.4f}"])
        facts.append(["cost", f"{sum(d.series('cost_fwd_equiv')):.0f} forward-pass units in {n} iterations"])
    if len(d.evals) > 1:
        (u0, e0), (u1, e1) = d.evals[0], d.evals[-1]
        facts.append(["held-out gain", f"{e0.summary()['reward']:.4f} after {u0} updates → {e1.summary()['reward']:.4f} "
                                       f"after {u1}: {describe_gain(e0, e1)}"])
    return _table(["", ""], facts)


def reward(d: RunData) -> str:
    if not d.rows:
        return _empty("no iterations logged yet")
    evals = [{"updates": u, **ev.summary()} for u, ev in d.evals]
    return _img(_png(charts.reward_chart, [r["iteration"] for r in d.rows], d.series("reward_mean"), evals),
                "reward chart", "training reward per iteration; held-out reward at each evaluation, ±1 SE")


def components(d: RunData) -> str:
    out = []
    keys = sorted({k for r in d.rows for k in r if k.startswith("reward/")})
    if keys:
        x = [r["iteration"] + 1 for r in d.rows]
        series = [charts.Series(k.removeprefix("reward/"), x, d.series(k)) for k in keys]
        out.append(_img(_png(charts.line_chart, series, title="training samples, per iteration", xlabel="updates",
                             ylabel="mean score"), "training reward components"))
    if d.evals:
        x = [u for u, _ in d.evals]
        sums = [ev.summary() for _, ev in d.evals]
        names = ["reward", *d.evals[0][1].components]
        # one component at weight 1 is the reward itself: draw it once
        shown = [k for k in names if not (k != "reward" and np.array_equal(d.evals[0][1].components[k], d.evals[0][1].total))]
        series = [charts.Series(k, x, [s[k] for s in sums], [s[k] - s[f"{k}_se"] for s in sums],
                                [s[k] + s[f"{k}_se"] for s in sums]) for k in shown]
        out.append(_img(_png(charts.line_chart, series, title="held-out evaluation, ±1 SE", xlabel="updates",
                             ylabel="mean score"), "evaluation reward components"))
        e0 = d.evals[0][1]
        rows = []
        for u, ev in d.evals:
            gains = ev.against(e0)
            rows.append([u, *(f"{ev.summary()[k]:.4f} ({gains[k].mean:+.3f} ± {gains[k].se:.3f})" for k in shown)])
        out.append("<p>each evaluation's mean and, in brackets, its paired gain over the first ± SE</p>"
                   + _table(["updates", *shown], rows))
    return "".join(out) or _empty("no rewards logged yet")


def window(d: RunData) -> str:
    if not d.rows:
        return _empty("no iterations logged yet")
    x = [r["iteration"] + 1 for r in d.rows]
    return (_img(_png(charts.window_heatmap, d.rows), "window heatmap", "share of trained (sample, step) pairs, step × update")
            + _img(_png(charts.line_chart, [charts.Series("window start", x, d.series("window_start")),
                                             charts.Series("window length", x, d.series("window_length"))],
                        xlabel="updates", ylabel="steps", size=(7.2, 2.8)), "window start and length"))


def cost(d: RunData) -> str:
    if not d.rows:
        return _empty("no iterations logged yet")
    x = [r["iteration"] + 1 for r in d.rows]
    train = np.cumsum(np.nan_to_num(d.series("cost_fwd_equiv")))
    series = [charts.Series("training", x, list(train / 1e3))]
    if d.evals:  # every evaluation, the one before training included, at the update it followed
        spent = np.cumsum([ev.sampler_forward_rows for _, ev in d.evals])
        series.append(charts.Series("in-run evaluation", [u for u, _ in d.evals], list(spent / 1e3)))
    return _img(_png(charts.line_chart, series, xlabel="updates", ylabel="thousand forward-pass units (cumulative)"),
                "cumulative cost")


def timings(d: RunData) -> str:
    if not d.rows:
        return _empty("no iterations logged yet")
    parts = {p: d.series(f"time/{p}") for p in PHASES if any(f"time/{p}" in r for r in d.rows)}
    return _img(_png(charts.stacked_bars, [r["iteration"] + 1 for r in d.rows], parts, xlabel="update",
                     ylabel="seconds"), "phase timings", "wall time of each phase of each iteration")


def throughput(d: RunData) -> str:
    if not d.rows:
        return _empty("no iterations logged yet")
    x = [r["iteration"] + 1 for r in d.rows]
    return _img(_png(charts.line_chart, [charts.Series("trajectories per second of training time", x, d.series("samples_per_s"))],
                     xlabel="updates", ylabel="samples / s", size=(7.2, 2.8)), "throughput")


def grids(d: RunData) -> str:
    """Side by side: the evaluation grids (the same captions and noise each time, so the
    same cells change), then the training samples' grids."""
    out = []
    for prefix, head, what in (("eval", "Evaluation: captions (rows) × noise seeds (columns)", "after {} updates"),
                               ("iter", "Training samples (one row per prompt group)", "iteration {}")):
        files = sorted((d.root / "samples").glob(f"{prefix}_*.png"))
        if files:
            cells = "".join(_img(_data_uri(f.read_bytes()), f.stem, what.format(int(f.stem.split("_")[1]))) for f in files)
            out.append(f"<h3>{head}</h3><div class='row'>{cells}</div>")
    return "".join(out) or _empty("no image grids written yet")


def config(d: RunData) -> str:
    return f"<details><summary>config.yaml (resolved)</summary><pre>{html.escape(d.config_text)}</pre></details>"


SECTIONS = {  # id -> (title, what draws it)
    "summary": ("Summary", summary), "reward": ("Reward", reward),
    "components": ("Reward components and checks", components), "window": ("The AdaScope window", window),
    "cost": ("Cumulative cost", cost), "timings": ("Phase timings", timings), "throughput": ("Throughput", throughput),
    "grids": ("Fixed-caption grids over the run", grids), "config": ("Config", config)}


def render(d: RunData) -> str:
    body = "".join(f'<section id="{s}"><h2>{title}</h2>{draw(d)}</section>' for s, (title, draw) in SECTIONS.items())
    name = html.escape(d.config.run.name)
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>adascope-ray run {name}</title>"
            f"<style>{_CSS}</style></head><body><h1>Run {name}</h1>{body}</body></html>")

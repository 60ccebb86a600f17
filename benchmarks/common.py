"""What every benchmark records beside its numbers: machine, commit, date."""
from __future__ import annotations

import json
import os
import platform
import subprocess
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    except OSError:
        return "unknown"


def machine() -> dict:
    return {"platform": platform.platform(), "processor": platform.processor(), "cpus": os.cpu_count(),
            "python": platform.python_version()}


def write_result(name: str, payload: dict, out_dir: str | Path | None = None) -> Path:
    """benchmarks/results/<name>.json with machine, commit and date added."""
    dest = Path(out_dir) if out_dir else ROOT / "benchmarks" / "results"
    dest.mkdir(parents=True, exist_ok=True)
    path = dest / f"{name}.json"
    path.write_text(json.dumps({"machine": machine(), "commit": commit(), "date": time.strftime("%Y-%m-%d"), **payload},
                               indent=1))
    return path

"""`ray job submit` of the tiny config against a real head node, token auth on."""
import json
import re
import subprocess
import time
from pathlib import Path

import pytest

from .conftest import free_port
from .head_node import BIN, start_head, stop_head

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).parents[2]


@pytest.fixture(scope="module")
def head():
    h = start_head()
    yield h
    stop_head(h)
    assert h.pids() == []  # nothing of this head outlives the tests


def submit(head, out_dir, *extra, wait=True):
    args = ["ray", "job", "submit", "--address", head.dashboard, "--working-dir", str(ROOT),
            "--runtime-env", str(ROOT / "deploy" / "runtime_env.yaml")]
    if not wait:
        args.append("--no-wait")
    args += ["--", "adascope-ray", "train", "configs/tiny.yaml", "--no-progress", "sampling.num_steps=4",
             "data.prompts_per_iteration=2", "data.group_size=2", f"run.output_dir={out_dir}",
             f"rewards.http_port={free_port()}", *extra]
    deadline = time.time() + 90
    while True:  # the job agent may still be starting right after `ray start`
        r = head.run(*args, timeout=600)
        if "No available agent" not in r.stdout + r.stderr or time.time() > deadline:
            break
        time.sleep(3)
    job_id = re.search(r"raysubmit_\w+", r.stdout + r.stderr)
    return r, job_id.group(0) if job_id else None


def alive_run_actors(head, run_name: str) -> list[str]:
    r = head.run("ray", "list", "actors", "--address", head.dashboard, "--filter", "state=ALIVE",
                 "--format", "json", "--limit", "1000")
    assert r.returncode == 0, r.stderr
    return [a["name"] for a in json.loads(r.stdout) if (a.get("name") or "").startswith(f"{run_name}:")]


def test_client_without_token_is_refused(head):
    env = {**head.env, "RAY_AUTH_MODE": "disabled", "HOME": str(Path(head.temp_dir) / "nohome")}
    r = subprocess.run([str(BIN / "ray"), "job", "list", "--address", head.dashboard], env=env,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode != 0 and "token" in (r.stdout + r.stderr).lower()


def test_job_runs_to_success(head, tmp_path):
    r, job_id = submit(head, tmp_path, "run.iterations=2")
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    status = head.run("ray", "job", "status", "--address", head.dashboard, job_id)
    assert "succeeded" in (status.stdout + status.stderr).lower()
    logs = head.run("ray", "job", "logs", "--address", head.dashboard, job_id).stdout
    assert "joining Ray" in logs and "run finished" in logs
    rows = (tmp_path / "tiny" / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(x)["weights_version"] for x in rows] == [1, 2]
    assert alive_run_actors(head, "tiny") == []


def test_job_stop_leaves_no_actors_or_app(head, tmp_path):
    _, job_id = submit(head, tmp_path, "run.iterations=500", "run.name=long", wait=False)
    metrics = tmp_path / "long" / "metrics.jsonl"
    deadline = time.time() + 240
    while not (metrics.exists() and metrics.read_text().strip()) and time.time() < deadline:
        time.sleep(2)
    assert metrics.exists(), "the job never logged an iteration"
    assert alive_run_actors(head, "long")  # the run is up
    head.run("ray", "job", "stop", "--address", head.dashboard, job_id)
    deadline = time.time() + 60
    while "stopped" not in head.run("ray", "job", "status", "--address", head.dashboard, job_id).stdout.lower():
        assert time.time() < deadline
        time.sleep(2)
    deadline = time.time() + 60
    while alive_run_actors(head, "long") and time.time() < deadline:
        time.sleep(2)
    assert alive_run_actors(head, "long") == []
    serve = head.run("serve", "status", "--address", head.dashboard).stdout
    assert "adascope-rewards" not in serve

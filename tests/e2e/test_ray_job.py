"""`ray job submit` of the tiny config against a real head node, token auth on."""
import json
import re
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest
import yaml

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
    args += ["--", "adascope-ray", "train", "configs/tiny_jpeg.yaml", "--no-progress", "sampling.num_steps=4",
             "data.prompts_per_iteration=2", "data.group_size=2", f"run.output_dir={out_dir}",
             "sampler.torch_threads=1", "learner.torch_threads=1",  # no oversubscription of 2 cores
             f"rewards.http_port={free_port()}", *extra]
    deadline = time.time() + 90
    while True:  # the job agent may still be starting right after `ray start`
        r = head.run(*args, timeout=600)
        if "No available agent" not in r.stdout + r.stderr or time.time() > deadline:
            break
        time.sleep(3)
    job_id = re.search(r"raysubmit_\w+", r.stdout + r.stderr)
    return r, job_id.group(0) if job_id else None


def wait_for(cond, timeout_s: float, what: str, every_s: float = 2.0):
    """Poll `cond()` until it returns something truthy; fail naming `what` at the deadline."""
    deadline = time.time() + timeout_s
    while True:
        value = cond()
        if value:
            return value
        assert time.time() < deadline, f"timed out after {timeout_s:.0f} s waiting for {what}"
        time.sleep(every_s)


def has_iteration(metrics: Path) -> bool:
    return metrics.exists() and bool(metrics.read_text().strip())


def dashboard_get(head, path: str):
    """GET of the head's dashboard REST API with the cluster's token. Polls use it, not
    the CLI: each `ray`/`serve` command is a Python process of about 2 s of CPU, and
    polling with them every few seconds takes a core from the runs being waited on."""
    token = (Path.home() / ".ray" / "auth_token").read_text().strip()
    req = urllib.request.Request(head.dashboard + path, headers={"authorization": f"Bearer {token}"})
    with urllib.request.urlopen(req, timeout=60) as r:
        return json.loads(r.read())


def job_status(head, job_id: str) -> str:
    return str(dashboard_get(head, f"/api/jobs/{job_id}")["status"]).lower()


def final_status(head, job_id: str) -> str:
    """The job's status once it has ended, else ''."""
    st = job_status(head, job_id)
    return st if any(w in st for w in ("succeeded", "failed", "stopped")) else ""


def alive_run_actors(head, run_name: str) -> list[str]:
    got = dashboard_get(head, "/api/v0/actors?limit=10000&filter_keys=state&filter_predicates=%3D&filter_values=ALIVE")
    actors = got["data"]["result"]["result"]
    assert all(a["state"] == "ALIVE" for a in actors)
    return [a["name"] for a in actors if (a.get("name") or "").startswith(f"{run_name}:")]


def test_client_without_token_is_refused(head):
    env = {**head.env, "RAY_AUTH_MODE": "disabled", "HOME": str(Path(head.temp_dir) / "nohome")}
    r = subprocess.run([str(BIN / "ray"), "job", "list", "--address", head.dashboard], env=env,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode != 0 and "token" in (r.stdout + r.stderr).lower()


def assert_succeeded_cleanly(head, job_id: str, run: Path, versions: list[int]) -> None:
    """A job that ran to success: its status and logs say so, every update reached the
    samplers, no actor of the run is left, and the cluster's auth token appears in
    neither the job's logs nor the run folder."""
    status = head.run("ray", "job", "status", "--address", head.dashboard, job_id)
    assert "succeeded" in (status.stdout + status.stderr).lower()
    logs = head.run("ray", "job", "logs", "--address", head.dashboard, job_id).stdout
    assert "joining Ray" in logs and "run finished" in logs
    rows = (run / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(x)["weights_version"] for x in rows] == versions
    assert alive_run_actors(head, run.name) == []
    token = (Path.home() / ".ray" / "auth_token").read_text().strip()
    assert len(token) >= 16 and token not in logs
    for f in run.rglob("*"):
        assert not f.is_file() or token.encode() not in f.read_bytes(), f


def test_job_stop_leaves_no_actors_or_app(head, tmp_path):
    _, job_id = submit(head, tmp_path, "run.iterations=500", "run.name=long", wait=False)
    metrics = tmp_path / "long" / "metrics.jsonl"
    wait_for(lambda: has_iteration(metrics), 240, "the job's first iteration")
    assert alive_run_actors(head, "long")  # the run is up
    head.run("ray", "job", "stop", "--address", head.dashboard, job_id)
    wait_for(lambda: "stopped" in job_status(head, job_id), 60, "the job to stop")
    wait_for(lambda: not alive_run_actors(head, "long"), 60, "the run's actors to go")
    assert alive_run_actors(head, "long") == []
    # Serve deletes an application asynchronously: it must be gone within a bound
    wait_for(lambda: "adascope-rewards" not in (serve_status(head).get("applications") or {}), 60,
             "the run's reward app to be removed")


def serve_status(head) -> dict:
    return dashboard_get(head, "/api/serve/applications/")


def running_replicas(head, app: str, deployment: str) -> int:
    apps = serve_status(head).get("applications") or {}
    dep = ((apps.get(app) or {}).get("deployments") or {}).get(deployment) or {}
    return sum(r.get("state") == "RUNNING" for r in dep.get("replicas") or [])


def deploy_rewards_file(head, tmp_path, tag: str, **scaling) -> None:
    """`serve deploy` of deploy/rewards.yaml with the deployment's scaling options
    replaced (and the cluster's existing HTTP options kept)."""
    doc = yaml.safe_load((ROOT / "deploy" / "rewards.yaml").read_text())
    doc.pop("http_options")
    dep = doc["applications"][0]["deployments"][0]
    for key in ("num_replicas", "autoscaling_config"):
        dep.pop(key, None)
    dep.update(scaling)
    path = tmp_path / f"rewards_{tag}.yaml"
    path.write_text(yaml.safe_dump(doc))
    r = head.run("serve", "deploy", str(path), "--address", head.dashboard)
    assert r.returncode == 0, r.stdout + r.stderr


def test_two_runs_share_a_served_reward_app_that_scales_mid_run(head, tmp_path):
    """Two jobs attach to one app deployed by `serve deploy`, which is scaled by hand and
    then handed to the autoscaler while they train; the short one runs to success (and
    is checked as any job that succeeds), the long one is stopped after it trained on
    the scaled app; neither loses or repeats an iteration."""
    deploy_rewards_file(head, tmp_path, "fixed1", num_replicas=1)
    wait_for(lambda: running_replicas(head, "adascope-rewards", "reward_jpeg_compressibility") >= 1,
             120, "the served reward app")
    half = ["rewards.deploy=attach", "sampler.num_cpus=0.5", "learner.num_cpus=0.5"]  # two runs on 2 CPUs
    # shared_a is far longer than any scaling takes (it is stopped once it has trained on
    # the scaled app), so that the scaling happens mid-run however slow the machine is
    _, long_job = submit(head, tmp_path, "run.iterations=100000", "run.name=shared_a", *half, wait=False)
    _, short_job = submit(head, tmp_path, "run.iterations=2", "run.name=shared_b", *half, wait=False)
    metrics = tmp_path / "shared_a" / "metrics.jsonl"
    wait_for(lambda: has_iteration(metrics), 240, "the run's first iteration")
    count = lambda: len(metrics.read_text().splitlines())  # noqa: E731

    deploy_rewards_file(head, tmp_path, "fixed2", num_replicas=2)  # scale while shared_a trains
    wait_for(lambda: running_replicas(head, "adascope-rewards", "reward_jpeg_compressibility") == 2,
             120, "2 running replicas")
    # then hand it to Serve's autoscaler with new bounds: the lower bound takes effect
    deploy_rewards_file(head, tmp_path, "auto3", autoscaling_config={
        "min_replicas": 3, "max_replicas": 4, "target_ongoing_requests": 2})
    wait_for(lambda: running_replicas(head, "adascope-rewards", "reward_jpeg_compressibility") == 3,
             120, "3 running replicas (autoscaling lower bound)")
    scaled_at = count()
    assert final_status(head, long_job) == ""  # both changes happened while shared_a was training

    status = wait_for(lambda: final_status(head, short_job), 400, "shared_b to finish", every_s=3)
    assert "succeeded" in status, head.run("ray", "job", "logs", "--address", head.dashboard, short_job).stdout[-3000:]
    assert_succeeded_cleanly(head, short_job, tmp_path / "shared_b", [1, 2])
    wait_for(lambda: count() >= scaled_at + 1, 300, "shared_a to train on the scaled app")
    head.run("ray", "job", "stop", "--address", head.dashboard, long_job)
    wait_for(lambda: "stopped" in job_status(head, long_job), 120, "shared_a to stop")
    for name, n in (("shared_a", None), ("shared_b", 2)):
        rows = [json.loads(x) for x in (tmp_path / name / "metrics.jsonl").read_text().splitlines()]
        its = [r["iteration"] for r in rows]
        assert its == list(range(n or len(its))) and len(its) >= (n or scaled_at + 1)  # none lost or repeated
        assert all(r["reward_mean"] is not None for r in rows)  # every iteration was scored
    # an attached app outlives the runs that used it
    assert running_replicas(head, "adascope-rewards", "reward_jpeg_compressibility") == 3

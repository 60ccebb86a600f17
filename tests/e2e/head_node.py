"""A real Ray head node (`ray start --head`) for tests, stopped by the pids it started.

Token authentication stays on (Ray 2.60's default): clients get RAY_AUTH_MODE=token
and read the token `ray start` wrote."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import psutil

from .conftest import free_port

BIN = Path(sys.executable).parent


@dataclass
class Head:
    temp_dir: str
    gcs_port: int
    dashboard_port: int
    metrics_port: int
    env: dict

    @property
    def dashboard(self) -> str:
        return f"http://127.0.0.1:{self.dashboard_port}"

    def run(self, *args: str, timeout: float = 300, cwd: str | None = None) -> subprocess.CompletedProcess:
        return subprocess.run([str(BIN / args[0]), *args[1:]], env=self.env, cwd=cwd, capture_output=True,
                              text=True, timeout=timeout)

    def pids(self) -> list[int]:
        """Processes of this head: their command line names its temp dir."""
        out = []
        for p in psutil.process_iter(["pid", "cmdline"]):
            try:
                if any(self.temp_dir in part for part in (p.info["cmdline"] or [])):
                    out.append(p.info["pid"])
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                pass
        return out


def start_head() -> Head:
    temp_dir = tempfile.mkdtemp(prefix="arh", dir="/tmp")  # short: Ray puts sockets under it
    from adascope_ray.cluster.runtime import LOCAL_CLUSTER_ENV

    # a test machine's head runs its workers at normal priority, as the CLI's local cluster does
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
           "RAY_USAGE_STATS_ENABLED": "0", "RAY_AUTH_MODE": "token", **LOCAL_CLUSTER_ENV}
    env.pop("RAY_ADDRESS", None)
    head = Head(temp_dir, free_port(), free_port(), free_port(), env)
    r = head.run("ray", "start", "--head", "--num-cpus=2", f"--port={head.gcs_port}",
                 "--dashboard-host=127.0.0.1", f"--dashboard-port={head.dashboard_port}",
                 f"--metrics-export-port={head.metrics_port}", f"--temp-dir={temp_dir}",
                 # own agent ports: the fixed defaults may still be held by a head just stopped
                 f"--dashboard-agent-listen-port={free_port()}", f"--dashboard-agent-grpc-port={free_port()}",
                 f"--runtime-env-agent-port={free_port()}",
                 "--disable-usage-stats", timeout=120)
    if r.returncode != 0:
        stop_head(head)
        raise RuntimeError(f"ray start failed:\n{r.stdout}\n{r.stderr}")
    return head


def stop_head(head: Head) -> None:
    procs = [psutil.Process(pid) for pid in head.pids() if pid != os.getpid()]
    for p in procs:
        try:
            p.terminate()
        except psutil.NoSuchProcess:
            pass
    # the GCS, the raylet and the log monitor outlive a SIGTERM by more than 30 s (measured):
    # give the rest a moment to exit, then kill what is left
    _, alive = psutil.wait_procs(procs, timeout=2)
    for p in alive:
        p.kill()
    time.sleep(0.5)
    shutil.rmtree(head.temp_dir, ignore_errors=True)

"""Starting or joining a Ray cluster with the worker setup every process needs."""
from __future__ import annotations

import json
import os
import socket

import ray

NAMESPACE = "adascope"  # actors are found by name here: ray.get_actor("<run>:learner", namespace="adascope")

WORKER_ENV = {
    "HF_HUB_OFFLINE": "1",
    "TOKENIZERS_PARALLELISM": "false",
    "RAY_USAGE_STATS_ENABLED": "0",
}


# Ray starts worker processes at nice 15, below everything else on the machine: on a
# busy machine a local run's actors (and Serve's proxy) then get a few per cent of a core
# and crawl. A cluster this process starts runs them at normal priority instead.
LOCAL_CLUSTER_ENV = {"RAY_worker_niceness": "0"}


def runtime_env(job_env: dict | None = None) -> dict:
    """Every worker (actors, Serve replicas) runs the torchvision fix first.

    Inside a Ray job (`ray job submit`), Ray merges this with the job's own
    runtime_env and refuses conflicting keys, so only what the job lacks is added."""
    job_env = job_env or {}
    env: dict = {}
    if "worker_process_setup_hook" not in job_env:
        env["worker_process_setup_hook"] = "adascope_ray._compat.setup_worker"
    job_vars = job_env.get("env_vars") or {}
    extra = {k: v for k, v in WORKER_ENV.items() if k not in job_vars}
    if extra:
        env["env_vars"] = extra
    return env


def job_runtime_env() -> dict:
    """The runtime_env of the Ray job this driver runs in ({} outside a job)."""
    raw = os.environ.get("RAY_JOB_CONFIG_JSON_ENV_VAR")
    if not raw:
        return {}
    try:
        return json.loads(raw).get("runtime_env") or {}
    except (ValueError, AttributeError):
        return {}


class ClusterUnreachable(ConnectionError):
    """The Ray address given does not answer."""


def probe(address: str, timeout_s: float) -> None:
    """Fail fast, naming the address, when a host:port (or ray://host:port) address
    does not accept connections; ray.init alone would retry for minutes."""
    target = address.split("://", 1)[-1]
    host, sep, port = target.rpartition(":")
    if not sep or not port.isdigit():
        return  # 'auto', 'local' and the like: leave them to Ray
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout_s).close()
    except OSError as err:
        raise ClusterUnreachable(f"cannot reach the Ray cluster at {address} within {timeout_s:.0f} s ({err}); "
                                 "check --address, cluster.address or RAY_ADDRESS") from None


def connect(cluster_cfg, address: str | None) -> bool:
    """Join `address`, or start a local cluster when there is none. Returns True
    when this process started the cluster (and so must shut it down)."""
    for k, v in WORKER_ENV.items():
        os.environ.setdefault(k, v)
    if address:
        probe(address, cluster_cfg.connect_timeout_s)
    if ray.is_initialized():
        return False
    if address:
        ray.init(address=address, namespace=NAMESPACE, runtime_env=runtime_env(job_runtime_env()), log_to_driver=True)
        return False
    for k, v in LOCAL_CLUSTER_ENV.items():  # read by the raylet ray.init starts
        os.environ.setdefault(k, v)
    ray.init(num_cpus=cluster_cfg.num_cpus, include_dashboard=cluster_cfg.include_dashboard, namespace=NAMESPACE,
             runtime_env=runtime_env(), log_to_driver=True)
    return True


def disconnect() -> None:
    """Stop Serve and the local cluster this process started."""
    from ray import serve

    serve.shutdown()
    ray.shutdown()

"""Starting or joining a Ray cluster with the worker setup every process needs."""
from __future__ import annotations

import os

import ray

WORKER_ENV = {
    "HF_HUB_OFFLINE": "1",
    "TOKENIZERS_PARALLELISM": "false",
    "RAY_USAGE_STATS_ENABLED": "0",
}


def runtime_env() -> dict:
    """Every worker (actors, Serve replicas) runs the torchvision fix first."""
    return {"worker_process_setup_hook": "adascope_ray._compat.setup_worker", "env_vars": dict(WORKER_ENV)}


def resolve_address(cli_address: str | None, cfg_address: str | None) -> str | None:
    return cli_address or cfg_address or os.environ.get("RAY_ADDRESS") or None


def connect(cluster_cfg, address: str | None) -> bool:
    """Join `address`, or start a local cluster when there is none. Returns True
    when this process started the cluster (and so must shut it down)."""
    for k, v in WORKER_ENV.items():
        os.environ.setdefault(k, v)
    if ray.is_initialized():
        return False
    if address:
        ray.init(address=address, runtime_env=runtime_env(), log_to_driver=True)
        return False
    ray.init(num_cpus=cluster_cfg.num_cpus, include_dashboard=cluster_cfg.include_dashboard,
             runtime_env=runtime_env(), log_to_driver=True)
    return True


def disconnect() -> None:
    """Stop Serve and the local cluster this process started."""
    from ray import serve

    serve.shutdown()
    ray.shutdown()

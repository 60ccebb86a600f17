import socket

import pytest


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def ray_cluster():
    """One real local Ray cluster (2 CPUs) for the e2e session."""
    import ray
    from ray import serve

    import os

    from adascope_ray.cluster.runtime import LOCAL_CLUSTER_ENV, runtime_env

    os.environ.update(LOCAL_CLUSTER_ENV)  # as the CLI's local cluster: workers at normal priority

    from adascope_ray.cluster.serve_app import start_serve

    metrics_port, http_port = free_port(), free_port()
    # every process reports its metrics each second (Ray's default is every 10 s): an
    # actor's last gauge values are then exported before a short run ends and kills it,
    # even on a busy machine (tests/e2e/test_local_ray.py reads them back)
    ray.init(num_cpus=2, include_dashboard=False, runtime_env=runtime_env(), log_to_driver=False,
             _metrics_export_port=metrics_port, _system_config={"metrics_report_interval_ms": 1000})
    start_serve("127.0.0.1", http_port)  # as a run starts it; tests' own serve.start calls then join it
    yield {"http_port": http_port, "metrics_port": metrics_port}
    serve.shutdown()
    ray.shutdown()

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

    from adascope_ray.cluster.runtime import runtime_env

    metrics_port = free_port()
    ray.init(num_cpus=2, include_dashboard=False, runtime_env=runtime_env(), log_to_driver=False,
             _metrics_export_port=metrics_port)
    yield {"http_port": free_port(), "metrics_port": metrics_port}
    serve.shutdown()
    ray.shutdown()

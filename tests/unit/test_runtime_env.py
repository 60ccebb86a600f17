"""The worker runtime_env never conflicts with a Ray job's own."""
from adascope_ray.cluster.runtime import WORKER_ENV, runtime_env

HOOK = "adascope_ray._compat.setup_worker"


def test_outside_a_job_everything_is_set():
    env = runtime_env({})
    assert env["worker_process_setup_hook"] == HOOK and env["env_vars"] == WORKER_ENV


def test_inside_a_job_only_missing_keys_are_added():
    job = {"worker_process_setup_hook": HOOK, "env_vars": {"HF_HUB_OFFLINE": "0"}, "working_dir": "x"}
    env = runtime_env(job)
    assert "worker_process_setup_hook" not in env and "working_dir" not in env
    assert "HF_HUB_OFFLINE" not in env["env_vars"]                     # the job's value wins
    assert set(env["env_vars"]) == set(WORKER_ENV) - {"HF_HUB_OFFLINE"}

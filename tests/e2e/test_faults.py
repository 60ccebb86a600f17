"""Faults injected into runs on a real local Ray cluster: a run that is interrupted,
loses a sampler, a reward replica, its learner or its driver ends with exactly the
metrics and weights of an uninterrupted run."""
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from adascope_ray.cli import main

from .kept import kept_rewards

pytestmark = pytest.mark.e2e
TINY = str(Path(__file__).parents[2] / "configs" / "tiny_jpeg.yaml")  # random-init tiny model, JPEG reward
KEPT = kept_rewards("jpeg")  # tiny_jpeg.yaml's reward
SAME = ("iteration", "weights_version", "reward_mean", "loss", "grad_norm", "approx_kl", "window_hist", "samples")


def args(tmp, port, name, *extra, kept=True):
    """A 4-iteration run; `kept`: its rewards from the module's kept app (a fault in
    the reward app's own life needs kept=False)."""
    return ["train", TINY, "--no-progress", f"run.output_dir={tmp}", f"run.name={name}", "run.iterations=4",
            "run.checkpoint_every=2", "sampling.num_steps=4", "data.prompts_per_iteration=2", "data.group_size=2",
            f"model.cache_dir={tmp / 'models'}", f"rewards.http_port={port}", *(KEPT if kept else []), *extra]


def rows(run: Path) -> list[dict]:
    path = run / "metrics.jsonl"
    return [json.loads(x) for x in path.read_text().splitlines()] if path.exists() else []


def final_lora(run: Path) -> dict:
    return load_file(run / "checkpoints" / "step_0004" / "pytorch_lora_weights.safetensors")


def assert_same_run(run: Path, ref: Path) -> None:
    got, want = rows(run), rows(ref)
    assert [r["iteration"] for r in got] == [0, 1, 2, 3]  # none lost, none counted twice
    for key in SAME:
        assert [r[key] for r in got] == [r[key] for r in want], key
    a, b = final_lora(run), final_lora(ref)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)  # bit-identical weights


def wait_rows(run: Path, n: int, timeout_s: float = 300) -> None:
    deadline = time.time() + timeout_s
    while len(rows(run)) < n:
        assert time.time() < deadline, f"{run.name}: no iteration {n - 1} after {timeout_s} s"
        time.sleep(0.2)


class Background:
    """main() in a thread (same driver, so actors can be killed by name)."""

    def __init__(self, argv):
        self.rc = None
        self.thread = threading.Thread(target=lambda: setattr(self, "rc", main(argv)), daemon=True)
        self.thread.start()

    def join(self, timeout_s: float = 600) -> int:
        self.thread.join(timeout_s)
        assert not self.thread.is_alive(), "the run did not finish"
        return self.rc


@pytest.fixture(scope="module")
def straight(ray_cluster, tmp_path_factory):
    """The reference: 4 iterations, uninterrupted."""
    tmp = tmp_path_factory.mktemp("faults")
    assert main(args(tmp, ray_cluster["http_port"], "straight")) == 0
    return tmp, tmp / "straight"


def test_two_plus_resume_plus_two_equals_four(straight, ray_cluster):
    tmp, ref = straight
    port = ray_cluster["http_port"]
    assert main(args(tmp, port, "split", "run.iterations=2")) == 0
    # a fresh start into a folder that holds a run is refused and nothing is touched
    before = (tmp / "split" / "metrics.jsonl").read_bytes()
    assert main(args(tmp, port, "split")) == 2
    # resuming with a setting that shapes training changed is refused, naming the field
    assert main(args(tmp, port, "split", "learner.lr=0.5", "--resume", str(tmp / "split"))) == 2
    assert (tmp / "split" / "metrics.jsonl").read_bytes() == before
    assert main(args(tmp, port, "split", "--resume", str(tmp / "split"))) == 0
    assert_same_run(tmp / "split", ref)


def test_sampler_and_reward_replica_killed_mid_run(straight, ray_cluster):
    import ray
    from ray import serve

    tmp, ref = straight
    run = Background(args(tmp, ray_cluster["http_port"], "faulty"))
    wait_rows(tmp / "faulty", 1)
    ray.kill(ray.get_actor("faulty:sampler:0"), no_restart=False)  # during iteration 1's rollout
    wait_rows(tmp / "faulty", 2)
    comp = serve.get_deployment_handle("reward_jpeg_compressibility", "e2e-jpeg")
    replica = comp.actor_name.remote().result(timeout_s=60)
    ray.kill(ray.get_actor(replica, namespace="serve"), no_restart=True)  # Serve must replace it
    assert run.join() == 0
    assert rows(tmp / "faulty")[-1]["sampler_restarts"] == 1
    assert_same_run(tmp / "faulty", ref)


def test_learner_killed_stops_with_the_resume_command(straight, ray_cluster, capsys):
    import ray

    tmp, ref = straight
    argv = args(tmp, ray_cluster["http_port"], "lost")
    run = Background(argv)
    wait_rows(tmp / "lost", 3)  # the checkpoint at iteration 2 exists
    ray.kill(ray.get_actor("lost:learner"))
    assert run.join() == 3
    err = capsys.readouterr().err
    assert "learner actor died" in err and f"--resume {tmp / 'lost'}" in err
    assert len(rows(tmp / "lost")) == 3  # nothing written after the loss
    assert main(argv + ["--resume", str(tmp / "lost")]) == 0  # redoes iteration 2 from step_0002
    assert_same_run(tmp / "lost", ref)


def test_async_learner_group_survives_a_lost_sampler_and_stops_on_a_lost_rank(straight, ray_cluster, capsys):
    """learner.max_staleness=1 with learner.group.num_ranks=2 (gloo, half a CPU each).
    Asynchronous: iteration n + 1's rollouts are sampled while the learner trains on
    n's, by the weights published before that update (one version old). Group: rank 1
    is its own process, and the first update (the same rollouts as the one-learner
    synchronous run's) gives that run's statistics to float tolerance. A sampler killed
    during an update is restarted with the published weights, not the learner's newer
    ones, and redoes its shard: the run goes on exactly as an uninterrupted one. A rank
    killed stops the run with the resume command, and the resumed run completes."""
    import ray

    tmp, sync = straight
    port = ray_cluster["http_port"]
    extra = ("learner.max_staleness=1", "learner.group.num_ranks=2", "learner.num_cpus=0.5",
             "learner.torch_threads=1", "sampler.torch_threads=1")  # three processes on 2 cores
    assert main(args(tmp, port, "ahead", *extra)) == 0
    ref = rows(tmp / "ahead")
    assert [r["weights_version"] for r in ref] == [1, 2, 3, 4]
    # iteration 0 is sampled fresh; each later one by the weights before the last update
    assert [r["off_policy/staleness_mean"] for r in ref] == [0.0, 1.0, 1.0, 1.0]
    assert [r["dropped_stale"] for r in ref] == [0, 0, 0, 0]
    assert all(0 < r["off_policy/is_weight_mean"] <= 2.0 for r in ref[1:]) and "off_policy/is_weight_mean" not in ref[0]
    assert ["time/drain" in r for r in ref] == [True, True, True, False]  # nothing sampled ahead of the last
    actors = json.loads((tmp / "ahead" / "actors.json").read_text())["actors"]
    assert {"ahead:learner", "ahead:learner:1", "ahead:sampler:0"} == set(actors)
    assert actors["ahead:learner"]["pid"] != actors["ahead:learner:1"]["pid"]
    first = rows(sync)[0]
    for key in ("samples", "window_hist", "weights_version", "learner_forward_rows", "trained_pairs"):
        assert ref[0][key] == first[key], key
    for key in ("reward_mean", "loss", "grad_norm", "approx_kl"):
        assert ref[0][key] == pytest.approx(first[key], rel=1e-4, abs=1e-9), key

    argv = args(tmp, port, "ahead_faulty", *extra)
    run = Background(argv)
    wait_rows(tmp / "ahead_faulty", 1)
    ray.kill(ray.get_actor("ahead_faulty:sampler:0"), no_restart=False)  # during update 1, sampling iteration 2
    wait_rows(tmp / "ahead_faulty", 3)  # the checkpoint at iteration 2 exists
    ray.kill(ray.get_actor("ahead_faulty:learner:1"))
    assert run.join() == 3
    err = capsys.readouterr().err
    assert "learner actor died" in err and f"--resume {tmp / 'ahead_faulty'}" in err
    got = rows(tmp / "ahead_faulty")
    assert len(got) == 3 and got[-1]["sampler_restarts"] == 1
    for key in SAME:  # the lost sampler's shard redone at the published weights: nothing changed
        assert [r[key] for r in got] == [r[key] for r in ref[:3]], key
    assert main(argv + ["--resume", str(tmp / "ahead_faulty")]) == 0
    assert [r["iteration"] for r in rows(tmp / "ahead_faulty")] == [0, 1, 2, 3]
    assert rows(tmp / "ahead_faulty")[-1]["weights_version"] == 4


def test_driver_killed_then_resume(straight, ray_cluster):
    import ray

    tmp, ref = straight
    argv = args(tmp, ray_cluster["http_port"], "orphan")
    env = {**os.environ, "RAY_ADDRESS": ray.get_runtime_context().gcs_address}
    proc = subprocess.Popen([sys.executable, "-m", "adascope_ray.cli", *argv], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        wait_rows(tmp / "orphan", 3)  # after the checkpoint at iteration 2
    finally:
        proc.send_signal(signal.SIGKILL)  # no teardown, no final checkpoint
        proc.wait(60)
    assert len(rows(tmp / "orphan")) < 4
    assert main(argv + ["--resume", str(tmp / "orphan")]) == 0
    assert_same_run(tmp / "orphan", ref)


def test_reward_app_that_cannot_start_stops_the_run_naming_it(ray_cluster, tmp_path, capsys):
    from ray import serve

    # a replica that asks for a GPU this cluster lacks never starts
    argv = args(tmp_path, ray_cluster["http_port"], "nogpu", "rewards.app_name=stuck-rewards",
                "rewards.components=[{name: jpeg_compressibility, num_gpus: 1}]", "rewards.ready_timeout_s=5", kept=False)
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "reward application 'stuck-rewards'" in err and "ready_timeout_s=5" in err
    deadline = time.time() + 60
    while "stuck-rewards" in serve.status().applications and time.time() < deadline:
        time.sleep(1)
    assert "stuck-rewards" not in serve.status().applications  # removed, not left pending
    assert not rows(tmp_path / "nogpu")


@pytest.mark.parametrize("sharded", [False, True])
def test_a_learner_that_dies_at_a_checkpoint_stops_the_run_as_lost(ray_cluster, sharded):
    """The learner can die while the loop takes a checkpoint (or exports the best
    weights), not only during an update: that too is LearnerLost, which the CLI turns
    into exit code 3 and the resume command, never an uncaught actor error. A sharded
    group calls every rank, and rank 1's death is seen while rank 0 still works."""
    import ray

    from adascope_ray.cluster.controller import Controller
    from adascope_ray.cluster.errors import LearnerLost
    from adascope_ray.cluster.learner_group import LearnerGroup

    @ray.remote(num_cpus=0)
    class Learner:
        def __init__(self, busy_s: float):
            self.busy_s = busy_s

        def export(self):
            time.sleep(self.busy_s)  # rank 0 of a sharded group waits on the others
            return {}

        def state(self):
            return {}

    dead = Learner.remote(0.0)
    ray.get(dead.export.remote())
    ray.kill(dead)
    deadline = time.monotonic() + 60  # ray.kill returns before the actor is gone
    while True:
        try:
            ray.get(dead.export.remote(), timeout=10)
        except ray.exceptions.RayActorError:
            break
        except ray.exceptions.GetTimeoutError:
            pass
        assert time.monotonic() < deadline, "the killed actor still answers after 60 s"
        time.sleep(0.1)
    group = LearnerGroup.__new__(LearnerGroup)  # the group's calls, on actors made here
    group.sharded = sharded
    group.actors = [Learner.remote(600.0), dead] if sharded else [dead]
    ctl = Controller.__new__(Controller)  # only the learner group is needed for the call
    ctl.learners = group
    try:
        started = time.monotonic()
        with pytest.raises(LearnerLost, match="while the checkpoint at iteration 5 was taken"):
            ctl.checkpoint(5)
        assert time.monotonic() - started < 300, "the dead rank was seen only after rank 0 finished"
    finally:
        ray.kill(group.actors[0])


def test_a_sharded_learner_group_trains_a_full_denoiser_and_resumes(ray_cluster, tmp_path):
    """learner.group.sharding=fsdp: two learner ranks each holding half of a fully
    fine-tuned denoiser, through the service. Two iterations publish and checkpoint the
    whole UNet, gathered from both ranks; a resumed run loads that checkpoint into the
    shards and trains two more (that a whole state loaded into shards trains as one
    learner does is tests/integration/test_learner_group.py's)."""
    port = ray_cluster["http_port"]
    extra = ("model.trainable=full", "learner.group.num_ranks=2", "learner.group.sharding=fsdp",
             "learner.num_cpus=0.5", "learner.torch_threads=1", "sampler.torch_threads=1")
    assert main(args(tmp_path, port, "sharded", *extra, "run.iterations=2")) == 0
    actors = json.loads((tmp_path / "sharded" / "actors.json").read_text())["actors"]
    assert actors["sharded:learner"]["pid"] != actors["sharded:learner:1"]["pid"]
    assert main(args(tmp_path, port, "sharded", *extra, "--resume", str(tmp_path / "sharded"))) == 0
    got = rows(tmp_path / "sharded")
    assert [r["iteration"] for r in got] == [0, 1, 2, 3] and [r["weights_version"] for r in got] == [1, 2, 3, 4]
    assert all(np.isfinite(r["loss"]) and r["trained_pairs"] > 0 for r in got)
    unet = lambda step: load_file(tmp_path / "sharded" / "checkpoints" / f"step_000{step}" / "unet"  # noqa: E731
                                  / "diffusion_pytorch_model.safetensors")
    two, four = unet(2), unet(4)
    assert len(two) > 100 and two.keys() == four.keys()  # the whole UNet, every tensor
    assert any(not torch.equal(two[k], four[k]) for k in two)  # the resumed updates trained it

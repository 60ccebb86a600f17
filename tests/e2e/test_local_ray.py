"""The service on a real local Ray cluster with a real Serve application."""
import base64
import io
import json
import time
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from adascope_ray.cli import main
from adascope_ray.rewards import build_scorer

pytestmark = pytest.mark.e2e
TINY = str(Path(__file__).parents[2] / "configs" / "tiny.yaml")


def test_train_two_iterations_end_to_end(ray_cluster, tmp_path):
    from ray import serve

    rc = main(["train", TINY, "--no-progress", "run.iterations=2", f"run.output_dir={tmp_path}",
               "run.grid_every=1", "sampling.num_steps=4", "data.prompts_per_iteration=2",
               "data.group_size=2", f"model.cache_dir={tmp_path / 'models'}",
               f"rewards.http_port={ray_cluster['http_port']}"])
    assert rc == 0
    run = tmp_path / "tiny"
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["iteration"] for r in rows] == [0, 1]
    # the version the samplers report after each publish: they received every update
    assert [r["weights_version"] for r in rows] == [1, 2]
    for r in rows:
        assert r["samples"] == 4 and np.isfinite(r["reward_mean"]) and r["reward_mean"] < 0
        assert r["cost_fwd_equiv"] == r["sampler_forward_rows"] + 3 * r["learner_forward_rows"]
        assert r["sampler_forward_rows"] == 4 * 4 * 2  # B x K x CFG
        assert {"time/rollout", "time/update", "time/publish", "time/sample_s", "time/score_s"} <= set(r)
    assert (run / "config.yaml").is_file() and (run / "reward.png").is_file()
    assert (run / "samples" / "iter_0000.png").is_file() and (run / "samples" / "iter_0001.png").is_file()
    assert (run / "checkpoints" / "step_0002" / "pytorch_lora_weights.safetensors").is_file()
    assert "adascope-rewards" not in serve.status().applications  # the run removed its app

    # the dashboard metrics: the node's export endpoint serves our gauges, tagged by run
    deadline, value = time.time() + 60, None
    while value is None and time.time() < deadline:
        body = urllib.request.urlopen(f"http://127.0.0.1:{ray_cluster['metrics_port']}/metrics", timeout=10).read().decode()
        for line in body.splitlines():
            if line.startswith("ray_adascope_reward_mean{") and 'run="tiny"' in line:
                value = float(line.rsplit(" ", 1)[1])
        time.sleep(2)
    assert value == pytest.approx(rows[-1]["reward_mean"], rel=1e-6)


def _png_b64(img: np.ndarray) -> str:
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="PNG")
    return base64.b64encode(buf.getvalue()).decode()


def _post(url: str, payload) -> tuple[int, dict]:
    data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    req = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=60) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def test_reward_app_http_weights_and_batching(ray_cluster):
    from ray import serve

    from adascope_ray.cluster.serve_app import app_builder

    # the same entry point `serve deploy deploy/rewards.yaml` uses
    app = app_builder({"components": [
        {"name": "jpeg_compressibility", "weight": 2.0, "batch_wait_timeout_s": 0.3},
        {"name": "jpeg_incompressibility", "weight": 0.5}]})
    serve.start(http_options={"host": "127.0.0.1", "port": ray_cluster["http_port"]})
    serve.run(app, name="rewards-e2e", route_prefix="/r", blocking=False)
    try:
        rng = np.random.default_rng(0)
        imgs = np.stack([np.full((32, 32, 3), 90, np.uint8), rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)])
        # PNG is lossless, so the server sees exactly these pixels
        url = f"http://127.0.0.1:{ray_cluster['http_port']}/r"
        status, body = _post(url, {"prompts": ["a", "b"], "images": [_png_b64(im) for im in imgs]})
        assert status == 200
        size = build_scorer("jpeg_incompressibility")(imgs, ["a", "b"])
        assert body["components"]["jpeg_incompressibility"] == pytest.approx(size.tolist(), abs=1e-6)
        assert body["scores"] == pytest.approx((2.0 * -size + 0.5 * size).tolist(), abs=1e-5)

        # malformed requests get a 400 naming the problem; the server keeps serving
        assert _post(url, b"{not json")[0] == 400
        status, body = _post(url, {"prompts": ["a"], "images": [_png_b64(imgs[0])] * 2})
        assert status == 400 and "prompts" in body["error"]
        assert _post(url, {"prompts": ["a"], "images": [_png_b64(imgs[0])]})[0] == 200

        # concurrent single-image calls are scored together by @serve.batch
        handle = serve.get_app_handle("rewards-e2e")
        responses = [handle.score.remote(imgs[:1], ["a"]) for _ in range(8)]
        assert all(r.result(timeout_s=60).total.shape == (1,) for r in responses)
        comp = serve.get_deployment_handle("reward_jpeg_compressibility", "rewards-e2e")
        sizes = comp.recent_batch_sizes.remote().result(timeout_s=30)
        assert max(sizes) > 1, sizes
    finally:
        serve.delete("rewards-e2e")


def test_run_attaches_to_a_running_reward_app_and_leaves_it(ray_cluster, tmp_path):
    from ray import serve

    from adascope_ray.cluster.serve_app import app_builder

    base = ["train", TINY, "--no-progress", "run.iterations=1", f"run.output_dir={tmp_path}",
            "sampling.num_steps=4", "data.prompts_per_iteration=2", "data.group_size=2",
            f"model.cache_dir={tmp_path / 'models'}", f"rewards.http_port={ray_cluster['http_port']}",
            "rewards.app_name=shared-rewards", "rewards.deploy=attach"]
    # nothing to attach to: a clear error naming the app, exit 2
    assert main(base + ["run.name=a0"]) == 2

    serve.start(http_options={"host": "127.0.0.1", "port": ray_cluster["http_port"]})
    serve.run(app_builder({"components": [{"name": "jpeg_incompressibility"}]}),
              name="shared-rewards", route_prefix="/shared", blocking=False)
    try:
        assert main(base + ["run.name=a1"]) == 0
        row = json.loads((tmp_path / "a1" / "metrics.jsonl").read_text().splitlines()[0])
        assert "reward/jpeg_incompressibility" in row and row["reward_mean"] > 0  # the attached app scored it
        assert "shared-rewards" in serve.status().applications  # an attached app is left running
    finally:
        serve.delete("shared-rewards")

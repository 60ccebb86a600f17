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

from .kept import kept_rewards

pytestmark = pytest.mark.e2e
TINY = str(Path(__file__).parents[2] / "configs" / "tiny.yaml")            # the embedded default: the shapes world
TINY_JPEG = str(Path(__file__).parents[2] / "configs" / "tiny_jpeg.yaml")  # random-init tiny model, JPEG reward
SCENE, JPEG = kept_rewards("scene"), kept_rewards("jpeg")  # the kept apps of tiny.yaml's and tiny_jpeg.yaml's rewards


def test_train_two_iterations_end_to_end(ray_cluster, tmp_path):
    from ray import serve

    rc = main(["train", TINY, "--no-progress", "run.iterations=2", f"run.output_dir={tmp_path}",
               "run.grid_every=1", "sampling.num_steps=4", "data.prompts_per_iteration=2",
               "data.group_size=2", f"model.cache_dir={tmp_path / 'models'}",
               f"rewards.http_port={ray_cluster['http_port']}",
               "eval.every=2", "eval.num_prompts=3", "eval.seeds=[0,1]", "eval.grid_prompts=2", "run.tensorboard=true"])
    assert rc == 0
    run = tmp_path / "tiny"
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["iteration"] for r in rows] == [0, 1]
    # the version the samplers report after each publish: they received every update
    assert [r["weights_version"] for r in rows] == [1, 2]
    for r in rows:
        # scene_check scores in [0, 1] and reports each check it made
        assert r["samples"] == 4 and 0.0 <= r["reward_mean"] <= 1.0
        assert {"reward/scene_check", "reward/scene_check/color", "reward/scene_check/count"} <= set(r)
        assert r["cost_fwd_equiv"] == r["sampler_forward_rows"] + 3 * r["learner_forward_rows"]
        assert r["sampler_forward_rows"] == 4 * 4 * 2  # B x K x CFG
        assert {"time/rollout", "time/update", "time/publish", "time/sample_s", "time/score_s"} <= set(r)
    assert (run / "config.yaml").is_file() and (run / "reward.png").is_file()
    assert (run / "samples" / "iter_0000.png").is_file() and (run / "samples" / "iter_0001.png").is_file()
    assert (run / "checkpoints" / "step_0002" / "pytorch_lora_weights.safetensors").is_file()
    assert "adascope-rewards" not in serve.status().applications  # the run removed its app

    # in-run evaluation: before training and after the last update, the same 3 validation
    # captions x 2 noise seeds; the row's figures recomputed from every sample's reward
    from adascope_ray.world.splits import caption_split

    evals = [json.loads(line) for line in (run / "eval.jsonl").read_text().splitlines()]
    assert [e["updates"] for e in evals] == [0, 2] and [e["version"] for e in evals] == [0, 2]
    assert evals[0]["prompts"] == evals[1]["prompts"] and len(evals[0]["prompts"]) == 3
    assert all(caption_split(p) == "validation" for p in evals[0]["prompts"])
    base, last = np.array(evals[0]["total"]), np.array(evals[1]["total"])
    d = (last - base).ravel()
    assert base.shape == (2, 3) and "eval/reward" not in rows[0]
    assert rows[1]["eval/reward"] == pytest.approx(last.mean()) and rows[1]["eval/samples"] == 6
    assert rows[1]["eval/gain"] == pytest.approx(d.mean()) and rows[1]["eval/gain_se"] == pytest.approx(d.std(ddof=1) / 6**0.5)
    assert rows[1]["eval/cost_fwd_equiv"] == 6 * 4 * 2  # samples x K x CFG, apart from the training cost
    assert (run / "samples" / "eval_0000.png").is_file() and (run / "samples" / "eval_0002.png").is_file()
    # run.tensorboard: TensorBoard's own reader finds the rows' scalars at their update
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(run / "tensorboard"))
    acc.Reload()
    assert [(e.step, e.value) for e in acc.Scalars("reward_mean")] == [(i + 1, pytest.approx(r["reward_mean"])) for i, r in enumerate(rows)]
    assert [(e.step, e.value) for e in acc.Scalars("eval/gain")] == [(2, pytest.approx(rows[1]["eval/gain"]))]

    # the dashboard metrics: the node's export endpoint serves our gauges, tagged by run and role
    want = {"reward": ("ray_adascope_reward_mean{", ['run="tiny"', 'role="controller"']),
            "sampler_version": ("ray_adascope_actor_weights_version{", ['actor="tiny:sampler:0"', 'role="sampler"']),
            "learner_version": ("ray_adascope_actor_weights_version{", ['actor="tiny:learner"', 'role="learner"']),
            "eval_reward": ("ray_adascope_eval_reward{", ['run="tiny"', 'role="controller"'])}
    # Ray exports a gauge some seconds after it is set, later still on a busy machine: poll,
    # bounded, until each gauge holds the run's final value (an earlier value is not a failure yet)
    expect = {"reward": rows[-1]["reward_mean"], "sampler_version": 2.0, "learner_version": 2.0,
              "eval_reward": rows[-1]["eval/reward"]}
    settled = lambda f: all(k in f and f[k] == pytest.approx(v, rel=1e-6) for k, v in expect.items())  # noqa: E731
    deadline, found = time.time() + 180, {}
    while not settled(found) and time.time() < deadline:
        body = urllib.request.urlopen(f"http://127.0.0.1:{ray_cluster['metrics_port']}/metrics", timeout=10).read().decode()
        for line in body.splitlines():
            for key, (prefix, tags) in want.items():
                if line.startswith(prefix) and all(t in line for t in tags):
                    found[key] = float(line.rsplit(" ", 1)[1])
        if not settled(found):
            time.sleep(2)
    assert found == pytest.approx(expect, rel=1e-6), f"gauges after 180 s: {found}, the run's final values: {expect}"

    # the run's report, in a real browser (after the gauges: a dead actor's are exported only for a while)
    _report_renders_in_chromium(run, tmp_path / "report.png")


def _report_renders_in_chromium(run: Path, screenshot: Path) -> None:
    """The run's report.html in a real browser: every section, every image decoded,
    nothing fetched from outside the file, and a screenshot that is not blank."""
    from adascope_ray.report import SECTIONS

    from .browser import open_page

    page = open_page(run / "report.html", screenshot)
    assert page["sections"] == list(SECTIONS)
    alts = [a for a, _, _ in page["images"]]
    # reward; components (training, evaluation); window (heatmap, start/length); cost;
    # timings; throughput; grids: the two evaluations' and the two iterations'
    assert alts == ["reward chart", "training reward components", "evaluation reward components", "window heatmap",
                    "window start and length", "cumulative cost", "phase timings", "throughput",
                    "eval_0000", "eval_0002", "iter_0000", "iter_0001"]
    assert all(w > 0 and h > 0 for _, w, h in page["images"]), page["images"]
    assert all(u.startswith(("file:", "data:")) for u in page["requests"]), page["requests"]
    assert "finished" in page["text"] and "held-out gain" in page["text"]
    shot = np.asarray(Image.open(screenshot).convert("L"), dtype=np.float64)
    assert shot.shape[0] > 2000 and shot.std() > 20 and (shot < 200).mean() > 0.05  # tall, and not an empty page


def test_a_run_stops_when_the_evaluation_gain_saturates_and_keeps_the_best(ray_cluster, tmp_path, capsys):
    """run.stop.patience=1 with an update too small to change an image: the evaluation
    after the first update is no better than the one before training (recomputed here
    from every sample), so the run stops after 1 of 4 iterations, says so, and keeps
    the best evaluation's weights in checkpoints/best."""
    rc = main(["train", TINY, "--no-progress", "run.iterations=4", f"run.output_dir={tmp_path}", "run.name=stops",
               "sampling.num_steps=4", "data.prompts_per_iteration=2", "data.group_size=2", "learner.lr=1e-9",
               f"model.cache_dir={tmp_path / 'models'}", f"rewards.http_port={ray_cluster['http_port']}",
               "eval.every=1", "eval.num_prompts=3", "eval.seeds=[0,1]", "eval.grid_prompts=0", "run.stop.patience=1", *SCENE])
    assert rc == 0
    run = tmp_path / "stops"
    evals = [np.array(json.loads(line)["total"]) for line in (run / "eval.jsonl").read_text().splitlines()]
    assert len(evals) == 2
    d = (evals[1] - evals[0]).ravel()
    assert not d.mean() > 2 * d.std(ddof=1) / len(d) ** 0.5  # not "better": the rule must stop here
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["iteration"] for r in rows] == [0] and rows[0]["eval/stale"] == 1
    stopped = json.loads((run / "stopped.json").read_text())
    assert stopped["reason"] == "saturated" and stopped["updates"] == 1 and stopped["saved_iterations"] == 3
    assert stopped["saved_cost_fwd_equiv"] == 3 * rows[0]["cost_fwd_equiv"]
    best_at = 1 if evals[1].mean() > evals[0].mean() else 0
    assert json.loads((run / "checkpoints" / "best" / "trainer_state.json").read_text())["iteration"] == best_at
    assert (run / "checkpoints" / "best" / "pytorch_lora_weights.safetensors").is_file()
    assert [p.name for p in sorted((run / "checkpoints").glob("step_*"))] == ["step_0001"]
    out = capsys.readouterr().out
    assert "stopped      after 1 of 4 iterations" in out and f"after {best_at} updates" in out


def test_sampler_placement_samples_the_published_window_through_the_service(ray_cluster, tmp_path):
    """window.placement=sampler with a sliding window of 2 of 4 steps (start 1, one step
    later every iteration): the learner's selection at iteration n is what the samplers
    run with noise at n + 1, a group's prefix runs once, only the window's latents travel,
    and the learner trains those steps."""
    rc = main(["train", TINY, "--no-progress", "run.iterations=3", f"run.output_dir={tmp_path}", "run.name=placed",
               "sampling.num_steps=4", "data.prompts_per_iteration=2", "data.group_size=2", "eval.every=0",
               f"model.cache_dir={tmp_path / 'models'}", f"rewards.http_port={ray_cluster['http_port']}",
               "window.placement=sampler", "sampling.initial_noise=per_group", "window.strategy=sliding",
               "window.sliding.size=2", "window.sliding.start=1", "window.sliding.every=1", *SCENE])
    assert rc == 0
    rows = [json.loads(line) for line in (tmp_path / "placed" / "metrics.jsonl").read_text().splitlines()]
    # iteration 0: no window yet, every step of 4 rows (x CFG); 1: window [1, 3) from sliding
    # at iteration 0, the 1-step prefix once for each of 2 groups; 2: window [2, 4)
    assert [r["sampler_forward_rows"] for r in rows] == [4 * 4 * 2, 2 * (2 * 1 + 4 * 3), 2 * (2 * 2 + 4 * 2)]
    # what travels to the learner: x_0 … x_4 of every row, then x_1 … x_3, then x_2 … x_4
    assert [r["sampler_latents_sent"] for r in rows] == [4 * 5, 4 * 3, 4 * 3]
    trained = [[k for k, n in enumerate(r["window_hist"]) if n] for r in rows]
    # (a group whose two rewards tie trains nothing; at least one iteration must train)
    assert any(trained) and all(t == w for t, w in zip(trained, [[1, 2], [1, 2], [2, 3]]) if t), trained


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
    app = app_builder({"max_request_mb": 1, "components": [
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

        # malformed requests get a 4xx naming the problem; the server keeps serving
        assert _post(url, b"{not json")[0] == 400
        status, body = _post(url, {"prompts": ["a"], "images": [_png_b64(imgs[0])] * 2})
        assert status == 400 and "prompts" in body["error"]
        status, body = _post(url, {"prompts": ["a"], "images": [base64.b64encode(b"not an image").decode()]})
        assert status == 400 and "images[0]" in body["error"]
        status, body = _post(url, {"prompts": ["a"], "images": ["A" * (2 << 20)]})  # over max_request_mb=1
        assert status == 413 and "limit" in body["error"]
        assert _post(url, {"prompts": ["a"], "images": [_png_b64(imgs[0])]})[0] == 200

        # the HTTP reward adapter speaks this endpoint's convention: apps can be chained
        from adascope_ray.rewards.http_adapter import jpeg_bytes

        chained = build_scorer("http", url=url)(imgs, ["a", "b"])
        seen = np.stack([np.asarray(Image.open(io.BytesIO(jpeg_bytes(im, 95))).convert("RGB")) for im in imgs])
        size_seen = build_scorer("jpeg_incompressibility")(seen, ["a", "b"])  # what the server decoded
        np.testing.assert_allclose(chained, 2.0 * -size_seen + 0.5 * size_seen, atol=1e-5)

        # concurrent single-image calls are scored together by @serve.batch
        handle = serve.get_app_handle("rewards-e2e")
        responses = [handle.score.remote(imgs[:1], ["a"]) for _ in range(8)]
        assert all(r.result(timeout_s=60).total.shape == (1,) for r in responses)
        comp = serve.get_deployment_handle("reward_jpeg_compressibility", "rewards-e2e")
        sizes = comp.recent_batch_sizes.remote().result(timeout_s=30)
        assert max(sizes) > 1, sizes
    finally:
        serve.delete("rewards-e2e")


def test_model_reward_batches_concurrent_requests_and_ocr_over_http(ray_cluster, tmp_path):
    """PickScore (a tiny random-init CLIP, loaded like released weights) scores concurrent
    single-image requests in shared batches, each row equal to the scorer run alone; the
    OCR reward reads rendered text, and the shapes world's checker a rendered scene,
    both sent over HTTP."""
    from PIL import ImageDraw, ImageFont
    from ray import serve

    from adascope_ray.cluster.serve_app import app_builder
    from adascope_ray.models.tiny_clip import build_clip_folder

    clip = str(build_clip_folder(tmp_path / "clip"))
    app = app_builder({"components": [
        {"name": "pickscore", "path": clip, "max_batch_size": 8, "batch_wait_timeout_s": 0.5},
        {"name": "ocr", "weight": 0.0}]})
    serve.start(http_options={"host": "127.0.0.1", "port": ray_cluster["http_port"]})
    serve.run(app, name="model-rewards", route_prefix="/m", blocking=False)
    try:
        rng = np.random.default_rng(1)
        imgs = rng.integers(0, 256, (8, 64, 64, 3), dtype=np.uint8)
        prompts = [f'a sign that says "word {i}"' for i in range(8)]
        handle = serve.get_app_handle("model-rewards")
        responses = [handle.score.remote(imgs[i : i + 1], prompts[i : i + 1]) for i in range(8)]
        got = np.concatenate([r.result(timeout_s=120).components["pickscore"] for r in responses])
        want = np.concatenate([build_scorer("pickscore", path=clip)(imgs[i : i + 1], prompts[i : i + 1]) for i in range(8)])
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)  # batched rows stay with their requests
        component = serve.get_deployment_handle("reward_pickscore", "model-rewards")
        sizes = component.recent_batch_sizes.remote().result(timeout_s=30)
        assert max(sizes) > 1 and sum(sizes) == 8, sizes
        # its image embedder, as the samplers ask for it (window.semantic.source = embedding)
        from adascope_ray.rewards.clip_family import image_embedder

        served = component.embed.remote(imgs[:3]).result(timeout_s=60)
        np.testing.assert_allclose(served, image_embedder("pickscore", build_scorer("pickscore", path=clip))(imgs[:3]),
                                   rtol=1e-5, atol=1e-5)

        page = Image.new("RGB", (320, 96), "white")
        ImageDraw.Draw(page).text((12, 22), "Hello World", fill="black", font=ImageFont.load_default(size=40))
        status, body = _post(f"http://127.0.0.1:{ray_cluster['http_port']}/m",
                             {"prompts": ['a sign that says "hello world"'], "images": [_png_b64(np.asarray(page))]})
        assert status == 200 and body["components"]["ocr"] == [1.0]
        # a prompt the reward cannot use is the client's error, named
        status, body = _post(f"http://127.0.0.1:{ray_cluster['http_port']}/m",
                             {"prompts": ["no quotes here"], "images": [_png_b64(np.asarray(page))]})
        assert status == 400 and "'no quotes here' has no quoted text" in body["error"]
    finally:
        serve.delete("model-rewards")


def test_scene_check_reward_serves_its_breakdown(ray_cluster):
    """The shapes world's verifiable reward as a Serve deployment: score and per-check
    breakdown over HTTP (null where a check does not apply)."""
    from ray import serve

    from adascope_ray.cluster.serve_app import app_builder
    from adascope_ray.world.scenes import dataset

    serve.start(http_options={"host": "127.0.0.1", "port": ray_cluster["http_port"]})
    serve.run(app_builder({"components": [{"name": "scene_check"}]}), name="shapes", route_prefix="/s", blocking=False)
    try:
        scenes, captions, _ = dataset(1, seed=0, size=64)  # two yellow squares on the left, striped black background
        status, body = _post(f"http://127.0.0.1:{ray_cluster['http_port']}/s",
                             {"prompts": [captions[0], "three green squares, white background"],
                              "images": [_png_b64(scenes[0])] * 2})
        c = body["components"]
        assert status == 200 and c["scene_check"] == [1.0, 0.0] and body["scores"] == [1.0, 0.0]
        assert c["scene_check/position"] == [1.0, None] and c["scene_check/background"] == [1.0, 0.0]
    finally:
        serve.delete("shapes")


def test_evaluation_requests_score_scene_checks_pass_fail_and_by_their_mean(ray_cluster):
    """A run that trains on scene_check's partial credit and product still evaluates with
    the held-out form: the app scores evaluation requests like SceneCheck() and training
    requests like SceneCheck(graded=True, aggregate="product"), both run here directly."""
    from ray import serve

    from adascope_ray.cluster.serve_app import app_builder
    from adascope_ray.rewards.scene_check import SceneCheck
    from adascope_ray.world.scenes import dataset

    serve.start(http_options={"host": "127.0.0.1", "port": ray_cluster["http_port"]})
    handle = serve.run(app_builder({"components": [{"name": "scene_check", "partial_credit": True,
                                                    "aggregate": "product"}]}),
                       name="shapes-forms", route_prefix="/forms", blocking=False)
    try:
        scenes, captions, _ = dataset(6, seed=3, size=32)
        images = np.stack(scenes)
        prompts = captions[1:] + captions[:1]  # each image under another caption: checks fail in part
        want_train = SceneCheck(graded=True, aggregate="product").breakdown(images, prompts)
        want_eval = SceneCheck().breakdown(images, prompts)
        assert not np.allclose(want_train[0], want_eval[0])  # the two forms differ on these images
        for evaluation, (scores, parts) in ((False, want_train), (True, want_eval)):
            got = handle.score.remote(images, prompts, evaluation).result(timeout_s=120)
            np.testing.assert_allclose(got.total, scores, rtol=1e-6)
            for k, v in parts.items():
                np.testing.assert_allclose(got.components[f"scene_check/{k}"], v, rtol=1e-6, equal_nan=True)
    finally:
        serve.delete("shapes-forms")


def test_run_attaches_to_a_running_reward_app_and_leaves_it(ray_cluster, tmp_path, capsys):
    from ray import serve

    from adascope_ray.cluster.serve_app import app_builder

    base = ["train", TINY_JPEG, "--no-progress", "run.iterations=1", f"run.output_dir={tmp_path}",
            "sampling.num_steps=4", "data.prompts_per_iteration=2", "data.group_size=2",
            f"model.cache_dir={tmp_path / 'models'}", f"rewards.http_port={ray_cluster['http_port']}",
            "rewards.app_name=shared-rewards", "rewards.deploy=attach"]
    # nothing to attach to: a clear error naming the app, exit 2
    assert main(base + ["run.name=a0"]) == 2

    serve.start(http_options={"host": "127.0.0.1", "port": ray_cluster["http_port"]})
    serve.run(app_builder({"components": [{"name": "jpeg_incompressibility", "weight": 2.0}]}),
              name="shared-rewards", route_prefix="/shared", blocking=False)
    try:
        # tiny_jpeg.yaml asks for jpeg_compressibility: the app scores something else, refused by name
        capsys.readouterr()
        assert main(base + ["run.name=a1"]) == 2
        err = capsys.readouterr().err
        assert "it lacks 'jpeg_compressibility'" in err and "it also scores 'jpeg_incompressibility'" in err
        assert not (tmp_path / "a1" / "metrics.jsonl").exists()
        mismatch = ["rewards.components=[{name: jpeg_incompressibility, weight: 1.0}]"]
        assert main(base + mismatch + ["run.name=a2"]) == 2  # the same reward at another weight: refused too
        assert "'jpeg_incompressibility' weight 2.0, the config 1.0" in capsys.readouterr().err
        same = ["rewards.components=[{name: jpeg_incompressibility, weight: 2.0}]"]
        assert main(base + same + ["run.name=a3"]) == 0
        row = json.loads((tmp_path / "a3" / "metrics.jsonl").read_text().splitlines()[0])
        assert "reward/jpeg_incompressibility" in row and row["reward_mean"] > 0  # the attached app scored it
        assert "shared-rewards" in serve.status().applications  # an attached app is left running
    finally:
        serve.delete("shared-rewards")


def _rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_two_placed_samplers_collective_publish_matches_object_store(ray_cluster, tmp_path):
    """Two samplers sharding the prompts: the collective (gloo) broadcast path inside a
    PACK placement group trains exactly as the object-store path does."""
    import ray

    common = ["train", TINY_JPEG, "--no-progress", "run.iterations=2", f"run.output_dir={tmp_path}",
              "sampling.num_steps=4", "data.prompts_per_iteration=2", "data.group_size=2",
              f"model.cache_dir={tmp_path / 'models'}", f"rewards.http_port={ray_cluster['http_port']}",
              "sampler.num_samplers=2", "sampler.num_cpus=0.5", "learner.num_cpus=0.5",
              "sampler.torch_threads=1", "learner.torch_threads=1", *JPEG]  # three processes on 2 cores
    assert main(common + ["run.name=store"]) == 0
    assert main(common + ["run.name=coll", "publish.method=collective", "publish.backend=gloo",
                          "cluster.placement=PACK"]) == 0
    store, coll = _rows(tmp_path / "store" / "metrics.jsonl"), _rows(tmp_path / "coll" / "metrics.jsonl")
    assert [r["weights_version"] for r in coll] == [1, 2]  # both samplers hold each new version
    assert all(r["samples"] == 4 for r in coll)          # 2 prompts x 2 samples, one prompt per sampler
    # float32 either way: the same weights, so the same samples, rewards and updates
    for key in ("reward_mean", "loss", "grad_norm", "approx_kl"):
        assert [r[key] for r in coll] == [r[key] for r in store], key

    groups = [g for g in ray.util.placement_group_table().values() if g["name"] == "coll:placement"]
    assert len(groups) == 1 and groups[0]["strategy"] == "PACK" and groups[0]["state"] == "REMOVED"
    assert [b for b in groups[0]["bundles"].values()] == [{"CPU": 0.5}] * 3  # learner + 2 samplers
    report = json.loads((tmp_path / "coll" / "actors.json").read_text())
    assert report["placement"] == "PACK" and report["placement_group_id"] == groups[0]["placement_group_id"]
    actors = report["actors"]
    assert sorted(actors) == ["coll:learner", "coll:sampler:0", "coll:sampler:1"]
    assert {a["placement_group_id"] for a in actors.values()} == {groups[0]["placement_group_id"]}
    assert [actors[n]["bundle_index"] for n in sorted(actors)] == [0, 1, 2]
    assert len({a["pid"] for a in actors.values()}) == 3  # three processes
    # at normal priority: Ray's default nice 15 starves them whenever anything else runs
    assert [a["nice"] for a in actors.values()] == [0, 0, 0]
    # without placement, the actors are not in a group
    plain = json.loads((tmp_path / "store" / "actors.json").read_text())["actors"]
    assert {a["placement_group_id"] for a in plain.values()} == {None}


def test_reward_autoscaling_bounds_from_our_config(ray_cluster):
    from ray import serve

    from adascope_ray.cluster.serve_app import deploy_rewards
    from adascope_ray.config import RewardsConfig

    cfg = RewardsConfig.model_validate({
        "app_name": "autoscaled", "route_prefix": "/autoscaled", "http_port": ray_cluster["http_port"],
        "components": [{"name": "jpeg_compressibility",
                        "autoscaling": {"min_replicas": 2, "max_replicas": 3, "target_ongoing_requests": 1}}]})
    deploy_rewards(cfg)
    try:
        deadline, running = time.time() + 120, 0
        while running < 2 and time.time() < deadline:
            dep = serve.status().applications["autoscaled"].deployments["reward_jpeg_compressibility"]
            running = dep.replica_states.get("RUNNING", 0)
            time.sleep(1)
        assert running == 2  # Serve keeps the lower bound without load (a fixed count would be 1)
        rewards = serve.get_app_handle("autoscaled").score.remote(np.zeros((1, 8, 8, 3), np.uint8), ["x"])
        assert rewards.result(timeout_s=60).total.shape == (1,)
    finally:
        serve.delete("autoscaled")


def test_weighted_multi_reward_run_with_clip_rewards(ray_cluster, tmp_path):
    """CLIP score, PickScore, the aesthetic MLP and HPSv2 (tiny random-init models, loaded
    like released weights) beside JPEG compressibility and OCR, each logged, combined by weight."""
    from adascope_ray.models.tiny_clip import build_aesthetic_head, build_clip_folder, build_hps_checkpoint

    clip = build_clip_folder(tmp_path / "clip")
    head = build_aesthetic_head(tmp_path / "head.safetensors", dim=16)
    hps_cfg, hps = build_hps_checkpoint(tmp_path / "hps")
    comps = (f"[{{name: clip_score, path: {clip}, weight: 0.01}}, {{name: pickscore, path: {clip}, weight: 0.1}},"
             f" {{name: aesthetic, path: {clip}, head_path: {head}, weight: 1.0}}, {{name: jpeg_compressibility, weight: 0.5}},"
             f" {{name: hpsv2, path: {hps}, open_clip_config: {hps_cfg}, weight: 2.0}}, {{name: ocr, weight: 3.0}}]")
    signs = tmp_path / "signs.txt"
    signs.write_text('a red sign that says "stop"\na blue sign that says "go"\n')
    rc = main(["train", TINY_JPEG, "--no-progress", "run.iterations=1", f"run.output_dir={tmp_path}", "run.name=multi",
               "sampling.num_steps=4", "data.prompts_per_iteration=2", "data.group_size=2",
               f"model.cache_dir={tmp_path / 'models'}", f"rewards.http_port={ray_cluster['http_port']}",
               f"rewards.components={comps}", f"data.prompts_file={signs}",
               # C_k from PickScore's image embedder, asked of its Serve deployment: probes 0, 2, 3
               "window.semantic.source=embedding", "window.semantic.reward=pickscore", "window.semantic.probe_every=2"])
    assert rc == 0
    row = _rows(tmp_path / "multi" / "metrics.jsonl")[0]
    assert row["sampler_probe_decodes"] == 4 * 3 and row["sampler_probe_embeds"] == 4 * 4  # samples x probes (+ final)
    parts = {n: row[f"reward/{n}"] for n in ("clip_score", "pickscore", "aesthetic", "jpeg_compressibility", "hpsv2", "ocr")}
    assert all(np.isfinite(v) for v in parts.values())
    assert 0 <= parts["clip_score"] <= 100 and -1 <= parts["hpsv2"] <= 1 and 0 <= parts["ocr"] <= 1
    weighted = (0.01 * parts["clip_score"] + 0.1 * parts["pickscore"] + parts["aesthetic"]
                + 0.5 * parts["jpeg_compressibility"] + 2.0 * parts["hpsv2"] + 3.0 * parts["ocr"])
    assert row["reward_mean"] == pytest.approx(weighted, rel=1e-5, abs=1e-5)  # means of a weighted sum


@pytest.mark.parametrize("name", ["tiny_sdxl", "tiny_sd3"])
def test_sdxl_and_sd3_families_run_through_the_service(ray_cluster, tmp_path, name):
    """configs/tiny_sdxl.yaml (UNet with pooled text + size ids, DDIM with eta) and
    configs/tiny_sd3.yaml (flow-matching SDE policy, LoRA on the transformer), through
    samplers, Serve rewards and the learner, with the reward-evolution signal on."""
    cfg = str(Path(__file__).parents[2] / "configs" / f"{name}.yaml")
    rc = main(["train", cfg, "--no-progress", "run.iterations=2", f"run.output_dir={tmp_path}",
               "sampling.num_steps=4", "data.prompts_per_iteration=2", "data.group_size=2",
               f"model.cache_dir={tmp_path / 'models'}", f"rewards.http_port={ray_cluster['http_port']}", *JPEG,
               # R_k: the samplers score decode(x̂0_k) at steps 0, 2, 3 on the reward app
               "window.reward_trace.enabled=true", "window.reward_trace.probe_every=2", "window.adascope.tau_r=0.9"])
    assert rc == 0
    rows = _rows(tmp_path / name / "metrics.jsonl")
    assert [r["weights_version"] for r in rows] == [1, 2]
    assert all(r["sampler_probe_scores"] == 4 * 3 and r["sampler_probe_decodes"] == 4 * 3 for r in rows)
    assert all(np.isfinite(r["loss"]) and r["trained_pairs"] > 0 for r in rows)
    assert (tmp_path / name / "checkpoints" / "step_0002" / "pytorch_lora_weights.safetensors").is_file()


def test_a_local_cluster_the_cli_starts_runs_workers_at_normal_priority():
    """Ray's own default is nice 15 for workers: on a machine busy with anything else
    they then get a few per cent of a core. The CLI's local cluster runs them at 0."""
    import subprocess
    import sys

    code = ("import os, ray; from adascope_ray.cluster.runtime import connect, disconnect; "
            "from adascope_ray.config import ClusterConfig; "
            "assert connect(ClusterConfig(num_cpus=1), None); "
            "print('nice', ray.get(ray.remote(lambda: os.nice(0)).remote())); disconnect()")
    env = {k: v for k, v in __import__("os").environ.items() if k not in ("RAY_ADDRESS", "RAY_worker_niceness")}
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, env=env)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "nice 0" in r.stdout

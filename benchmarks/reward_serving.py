"""Reward serving throughput against batch size and replica count.

    .venv/bin/python benchmarks/reward_serving.py [--requests 64] [--clip base32|large14|h14]

A real Serve application (the same app_builder a run deploys) with one reward
component, `max_batch_size` and `num_replicas` varied. Concurrent single-image
requests (as samplers send them per trajectory chunk) go through the app handle;
throughput = images scored / wall time, after one warm-up round. Scorers:

    scene_check   the shapes world's verifiable reward (64 px scenes, weight-free)
    clip          PickScore-style CLIP cosine with a random-init CLIPModel of a real
                  size built from config (ViT-B/32 by default on CPU; large14 / h14 on a GPU)

Passing means nothing; it reports images/s and the speed-up over batch size 1.
"""
from __future__ import annotations

import argparse
import socket
import tempfile
import time
from pathlib import Path

import numpy as np
import ray

from common import CLIP_SIZES, ROOT, write_result


def throughput(component: dict, images: np.ndarray, prompts: list[str], http_port: int) -> float:
    from ray import serve

    from adascope_ray.cluster.serve_app import app_builder

    serve.start(http_options={"host": "127.0.0.1", "port": http_port})
    serve.run(app_builder({"components": [component]}), name="bench", route_prefix="/bench")
    handle = serve.get_app_handle("bench")
    try:
        for rnd in range(2):  # round 0 warms up
            t0 = time.perf_counter()
            refs = [handle.score.remote(images[i : i + 1], prompts[i : i + 1]) for i in range(len(prompts))]
            for r in refs:
                r.result(timeout_s=600)
            dt = time.perf_counter() - t0
        return len(prompts) / dt
    finally:
        serve.delete("bench")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--requests", type=int, default=64)
    ap.add_argument("--batch-sizes", default="1,4,16")
    ap.add_argument("--replicas", default="1,2")
    ap.add_argument("--clip", default="base32", choices=sorted(CLIP_SIZES))
    ap.add_argument("--scorers", default="scene_check,clip")
    args = ap.parse_args()
    from adascope_ray.models.tiny_clip import build_clip_folder
    from adascope_ray.world.scenes import dataset

    from adascope_ray.cluster.runtime import runtime_env

    images, prompts, _ = dataset(args.requests, seed=1, size=64)
    ray.init(include_dashboard=False, log_to_driver=False, runtime_env=runtime_env())
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    rows = []
    try:
        with tempfile.TemporaryDirectory() as tmp:
            clip = None
            print(f"{'scorer':<14}{'replicas':>9}{'max batch':>10}{'images/s':>10}{'vs batch 1':>11}")
            for scorer in args.scorers.split(","):
                if scorer == "clip" and clip is None:
                    clip = str(build_clip_folder(Path(tmp) / "clip", {**CLIP_SIZES[args.clip]}))
                for n in (int(x) for x in args.replicas.split(",")):
                    base = None
                    for b in (int(x) for x in args.batch_sizes.split(",")):
                        comp = {"name": "scene_check"} if scorer == "scene_check" else {"name": "pickscore", "path": clip}
                        comp.update(max_batch_size=b, batch_wait_timeout_s=0.05, num_replicas=n, num_cpus=0)
                        ips = throughput(comp, images, prompts, port)
                        base = base or ips
                        rows.append({"scorer": scorer if scorer != "clip" else f"clip-{args.clip}", "replicas": n,
                                     "max_batch_size": b, "images_per_s": ips, "vs_batch_1": ips / base})
                        print(f"{rows[-1]['scorer']:<14}{n:>9}{b:>10}{ips:>10.1f}{ips / base:>11.2f}", flush=True)
    finally:
        ray.shutdown()
    path = write_result("reward_serving", {"requests": args.requests, "clip": args.clip, "results": rows})
    print(f"wrote {path.relative_to(ROOT)}")


if __name__ == "__main__":
    main()

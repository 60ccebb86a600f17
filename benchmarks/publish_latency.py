"""Weight publication latency against trainable size: object store vs collective.

    .venv/bin/python benchmarks/publish_latency.py [--samplers 2] [--repeats 3] [--skip-sd15]

One learner-like actor holds a trainable state; N sampler-like actors hold the same
layout. Latency is from the publish call until every receiver has its own copy
loaded (what Publisher does in a run), median of --repeats after one warm-up:

    object_store  the sender returns the state (numpy arrays) once; each receiver
                  reads it from the object store and copies it into its buffers
    collective    adascope_ray.cluster.publish.send_state / receive_state over a
                  gloo group: header + one flat float32 broadcast, then unpack

Sizes: the builtin tiny UNet's LoRA at rank 4..64 and the whole tiny UNet (the real
trainable layouts, float32), and a random tensor set the size of SD1.5's UNet (860 M
parameters, float16; the collective path sends it as float32, as the code does).
Passing means nothing; it reports the ratio collective / object_store per size.
"""
from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import ray

from common import ROOT, write_result


from adascope_ray.cluster.publish import join_group, receive_state, send_state  # noqa: E402


def tiny_layouts(ranks: list[int]) -> dict[str, dict[str, tuple[tuple[int, ...], str]]]:
    """name -> {param: (shape, dtype)} for the tiny UNet's LoRA ranks and full UNet."""
    from peft import LoraConfig

    from adascope_ray.models.tiny import build_tiny_pipeline

    out = {}
    for r in ranks:
        unet = build_tiny_pipeline(0, 32, ROOT / "runs" / ".bench-tokenizer").unet
        unet.add_adapter(LoraConfig(r=r, lora_alpha=r, target_modules=["to_q", "to_k", "to_v", "to_out.0"]))
        out[f"tiny LoRA r={r}"] = {n: (tuple(p.shape), "float32") for n, p in unet.named_parameters() if p.requires_grad}
    unet = build_tiny_pipeline(0, 32, ROOT / "runs" / ".bench-tokenizer").unet
    out["tiny UNet (full)"] = {n: (tuple(p.shape), "float32") for n, p in unet.named_parameters()}
    return out


def sd15_layout() -> dict[str, tuple[tuple[int, ...], str]]:
    """860 M float16 parameters as 86 tensors of 10 M (the size of SD1.5's UNet)."""
    return {f"w{i:03d}": ((10_000, 1_000), "float16") for i in range(86)}


@ray.remote(num_cpus=0)
class Endpoint:
    """Holds a state of a given layout; sends it (rank 0) or receives it."""

    def __init__(self, layout: dict, seed: int):
        rng = np.random.default_rng(seed)
        self.state = {n: rng.standard_normal(s, dtype=np.float32).astype(d) for n, (s, d) in layout.items()}
        self.layout = {n: s for n, (s, _) in layout.items()}

    def join(self, world: int, rank: int, group: str) -> None:
        join_group(world, rank, "gloo", group, 600)

    def publish(self) -> dict:
        return self.state

    def load(self, state: dict) -> float:
        for n, v in state.items():
            np.copyto(self.state[n], v, casting="unsafe")
        return time.perf_counter()

    def send(self, version: int, group: str) -> int:
        return send_state(version, self.state, "gloo", group)

    def receive(self, group: str) -> float:
        _, state = receive_state(self.layout, "gloo", group)
        return self.load(state)


def measure(name: str, layout: dict, samplers: int, repeats: int) -> dict:
    numel = sum(int(np.prod(s)) for s, _ in layout.values())
    nbytes = sum(int(np.prod(s)) * np.dtype(d).itemsize for s, d in layout.values())
    sender = Endpoint.remote(layout, 0)
    receivers = [Endpoint.remote(layout, i + 1) for i in range(samplers)]
    group = f"bench-{abs(hash(name)) % 10**8}"
    ray.get([sender.join.remote(samplers + 1, 0, group)] + [r.join.remote(samplers + 1, i + 1, group) for i, r in enumerate(receivers)])
    times = {"object_store": [], "collective": []}
    for rep in range(repeats + 1):  # the first round warms up
        t0 = time.perf_counter()
        ref = sender.publish.remote()
        ray.get([r.load.remote(ref) for r in receivers])
        if rep:
            times["object_store"].append(time.perf_counter() - t0)
        del ref
        t0 = time.perf_counter()
        ray.get([sender.send.remote(rep, group)] + [r.receive.remote(group) for r in receivers])
        if rep:
            times["collective"].append(time.perf_counter() - t0)
    for a in [sender, *receivers]:
        ray.kill(a)
    med = {k: statistics.median(v) for k, v in times.items()}
    return {"size": name, "params": numel, "bytes": nbytes, "samplers": samplers,
            "object_store_s": med["object_store"], "collective_s": med["collective"],
            "ratio_collective_over_object_store": med["collective"] / med["object_store"], "all_s": times}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--samplers", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--ranks", default="4,8,16,32,64")
    ap.add_argument("--skip-sd15", action="store_true", help="leave out the 860 M-parameter set (needs ~16 GB RAM)")
    args = ap.parse_args()
    sizes = tiny_layouts([int(r) for r in args.ranks.split(",")])
    if not args.skip_sd15:
        sizes["SD1.5-size UNet (fp16)"] = sd15_layout()
    ray.init(num_cpus=args.samplers + 1, include_dashboard=False, log_to_driver=False,
             object_store_memory=6 * 1024**3)
    print(f"{'trainable set':<24}{'params':>11}{'size':>13}{'object store':>15}{'collective':>15}{'ratio':>8}")
    try:
        rows = []
        for name, layout in sizes.items():
            rows.append(measure(name, layout, args.samplers, args.repeats))
            r = rows[-1]
            print(f"{name:<24}{r['params'] / 1e6:>9.2f} M{r['bytes'] / 1e6:>10.1f} MB"
                  f"{r['object_store_s'] * 1e3:>12.1f} ms{r['collective_s'] * 1e3:>12.1f} ms"
                  f"{r['ratio_collective_over_object_store']:>8.2f}", flush=True)
    finally:
        ray.shutdown()
    path = write_result("publish_latency", {"samplers": args.samplers, "repeats": args.repeats, "backend": "gloo",
                                            "results": rows})
    print(f"wrote {path.relative_to(ROOT)}")


if __name__ == "__main__":
    main()

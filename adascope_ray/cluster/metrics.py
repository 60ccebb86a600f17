"""Our metrics in the Ray dashboard (ray.util.metrics; exported as ray_adascope_*).

Run metrics come from the controller and carry tags run=<run.name>, role=controller.
Actor metrics come from each actor and carry run, role (sampler | learner) and actor
(its name, e.g. tiny:sampler:0).
"""
from __future__ import annotations

from ray.util.metrics import Counter, Gauge

GAUGES = {  # metrics row key -> description; the gauge is adascope_<key with / as _>
    "reward_mean": "Mean combined reward of the iteration's samples.",
    "window_start": "Mean first trained step of the window (0 = noisiest).",
    "window_length": "Mean number of trained steps per trajectory.",
    "zero_std_ratio": "Share of samples in prompt groups with zero reward spread.",
    "samples_per_s": "Trajectories generated per second of iteration time.",
    "cost_fwd_equiv": "Denoiser forward-pass units spent in the iteration.",
    "weights_version": "Version of the weights the samplers hold.",
    "iteration_s": "Wall time of the iteration.",
    "eval/reward": "Mean reward of the last in-run evaluation (fixed prompts and noise).",
    "eval/gain": "Paired gain of the last in-run evaluation over the one before training.",
}


ACTOR_GAUGES = {  # metrics row key -> description; the gauge is adascope_<key with / as _>
    "actor_busy_s": "Wall time of the actor's last call (sampler: generate and score; learner: update).",
    "actor_weights_version": "Weights version the actor holds.",
}


def gauge_name(key: str) -> str:
    """The exported name of a metrics-row key (Ray prefixes it with ray_)."""
    return "adascope_" + key.replace("/", "_")


class RunMetrics:
    def __init__(self, run_name: str):
        tags = {"run": run_name, "role": "controller"}
        self.gauges = {}
        for name, desc in GAUGES.items():
            g = Gauge(gauge_name(name), description=desc, tag_keys=("run", "role"))
            g.set_default_tags(tags)
            self.gauges[name] = g
        self.samples = Counter("adascope_samples_total", description="Trajectories generated.", tag_keys=("run", "role"))
        self.samples.set_default_tags(tags)

    def record(self, row: dict) -> None:
        for name, g in self.gauges.items():
            if name in row:
                g.set(float(row[name]))
        self.samples.inc(float(row.get("samples", 0)))


class ActorMetrics:
    """Gauges one sampler or learner actor reports about itself."""

    def __init__(self, actor_name: str):
        run, role = actor_name.split(":")[:2]
        tags = {"run": run, "role": role, "actor": actor_name}
        self.gauges = {}
        for name, desc in ACTOR_GAUGES.items():
            g = Gauge(f"adascope_{name}", description=desc, tag_keys=("run", "role", "actor"))
            g.set_default_tags(tags)
            self.gauges[name] = g

    def record(self, busy_s: float | None = None, version: int | None = None) -> None:
        if busy_s is not None:
            self.gauges["actor_busy_s"].set(busy_s)
        if version is not None:
            self.gauges["actor_weights_version"].set(version)

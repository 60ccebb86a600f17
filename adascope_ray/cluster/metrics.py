"""Our metrics in the Ray dashboard (ray.util.metrics; exported as ray_adascope_*)."""
from __future__ import annotations

from ray.util.metrics import Counter, Gauge

GAUGES = {
    "reward_mean": "Mean combined reward of the iteration's samples.",
    "window_start": "Mean first trained step of the window (0 = noisiest).",
    "window_length": "Mean number of trained steps per trajectory.",
    "zero_std_ratio": "Share of samples in prompt groups with zero reward spread.",
    "samples_per_s": "Trajectories generated per second of iteration time.",
    "cost_fwd_equiv": "Denoiser forward-pass units spent in the iteration.",
    "weights_version": "Version of the weights the samplers hold.",
    "iteration_s": "Wall time of the iteration.",
}


class RunMetrics:
    def __init__(self, run_name: str):
        tags = {"run": run_name}
        self.gauges = {}
        for name, desc in GAUGES.items():
            g = Gauge(f"adascope_{name}", description=desc, tag_keys=("run",))
            g.set_default_tags(tags)
            self.gauges[name] = g
        self.samples = Counter("adascope_samples_total", description="Trajectories generated.", tag_keys=("run",))
        self.samples.set_default_tags(tags)

    def record(self, row: dict) -> None:
        for name, g in self.gauges.items():
            if name in row:
                g.set(float(row[name]))
        self.samples.inc(float(row.get("samples", 0)))

"""deploy/ manifests agree with the CLI, the configs and the Serve entry point."""
import importlib
import shlex
from pathlib import Path

import yaml

from adascope_ray.config import RewardsConfig, load_config

ROOT = Path(__file__).parents[2]
KUBE = ROOT / "deploy" / "kuberay"


def load(name):
    return yaml.safe_load((KUBE / name).read_text())


def check_serve_apps(apps):
    for app in apps:
        module, _, attr = app["import_path"].partition(":")
        assert callable(getattr(importlib.import_module(module), attr))
        cfg = RewardsConfig.model_validate(app["args"])
        built = {f"reward_{c.name}" for c in cfg.components} | {"reward_ingress"}
        assert {d["name"] for d in app.get("deployments", [])} <= built  # Serve would reject others


def test_raycluster():
    doc = load("raycluster.yaml")
    assert (doc["apiVersion"], doc["kind"]) == ("ray.io/v1", "RayCluster")
    assert doc["spec"]["headGroupSpec"]["template"]["spec"]["containers"]
    gpu = doc["spec"]["workerGroupSpecs"][0]["template"]["spec"]["containers"][0]["resources"]["limits"]
    assert gpu["nvidia.com/gpu"] == "1"


def test_rayjob_entrypoint_is_our_cli_on_a_real_config():
    doc = load("rayjob.yaml")
    assert (doc["apiVersion"], doc["kind"]) == ("ray.io/v1", "RayJob")
    argv = shlex.split(doc["spec"]["entrypoint"])
    assert argv[:2] == ["adascope-ray", "train"]
    load_config(ROOT / argv[2], argv[3:])  # the config it names exists and validates
    env = yaml.safe_load(doc["spec"]["runtimeEnvYAML"])
    assert env["worker_process_setup_hook"] == "adascope_ray._compat.setup_worker"
    assert doc["spec"]["clusterSelector"]["ray.io/cluster"] == load("raycluster.yaml")["metadata"]["name"]


def test_rayservice_serve_config_is_deploy_rewards_yaml():
    doc = load("rayservice.yaml")
    assert (doc["apiVersion"], doc["kind"]) == ("ray.io/v1", "RayService")
    serve_cfg = yaml.safe_load(doc["spec"]["serveConfigV2"])
    check_serve_apps(serve_cfg["applications"])
    plain = yaml.safe_load((ROOT / "deploy" / "rewards.yaml").read_text())
    assert serve_cfg["applications"] == plain["applications"]


def test_runtime_env_file():
    env = yaml.safe_load((ROOT / "deploy" / "runtime_env.yaml").read_text())
    assert env["worker_process_setup_hook"] == "adascope_ray._compat.setup_worker"


def test_grafana_dashboard_plots_every_metric_we_export():
    import json

    from adascope_ray.cluster.metrics import ACTOR_GAUGES, GAUGES, gauge_name

    dash = json.loads((ROOT / "deploy" / "grafana_dashboard.json").read_text())
    exprs = " ".join(t["expr"] for p in dash["panels"] for t in p["targets"])
    for name in list(GAUGES) + list(ACTOR_GAUGES) + ["samples_total"]:
        assert f"ray_{gauge_name(name)}{{" in exprs, name  # Ray exports our metrics with a ray_ prefix

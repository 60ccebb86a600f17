"""The reward application on Ray Serve: one deployment per reward component, each
batching requests with @serve.batch, and an ingress that fans out to the components
and combines them by weight. The ingress also answers HTTP:

    POST <route_prefix>  {"prompts": [...], "images": [base64 PNG/JPEG, ...]}
    -> {"scores": [...], "components": {name: [...]}}
"""
from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

import numpy as np
from ray import serve

from .._compat import setup_worker
from ..rewards.base import build_scorer, check_scores
from ..rewards.payload import PayloadError, parse_score_request
from ..types import RewardResult


@dataclass(frozen=True)
class ScoreRequest:
    images: np.ndarray   # (n, H, W, 3) uint8
    prompts: list[str]   # n
    evaluation: bool = False  # score with the reward's evaluation form (RewardComponentConfig.evaluation_options)


@serve.deployment
class RewardComponent:
    """One reward model. Concurrent requests are scored as one batch."""

    def __init__(self, name: str, max_batch_size: int, batch_wait_timeout_s: float, options: dict | None = None,
                 eval_options: dict | None = None):
        setup_worker()
        self.scorer = build_scorer(name, **(options or {}))
        # the held-out form (scene_check pass / fail, mean of the checks) where training differs from it
        differs = eval_options is not None and eval_options != (options or {})
        self.eval_scorer = build_scorer(name, **eval_options) if differs else self.scorer
        self.name = name
        self.score.set_max_batch_size(max_batch_size)
        self.score.set_batch_wait_timeout_s(batch_wait_timeout_s)
        self.batch_sizes: list[int] = []  # images per batch, for observability
        self.embedder = None

    @serve.batch(max_batch_size=32, batch_wait_timeout_s=0.01)
    async def score(self, requests: list[ScoreRequest]) -> list[dict[str, np.ndarray]]:
        """Per request {name: (n,) scores} plus {name/check: (n,)} for a scorer that
        reports a breakdown (NaN where a check does not apply). Training and evaluation
        requests of one batch are scored apart, each by its own form."""
        results: list[dict[str, np.ndarray] | None] = [None] * len(requests)
        for evaluation in (False, True):
            idx = [i for i, r in enumerate(requests) if r.evaluation == evaluation]
            if idx:
                for i, out in zip(idx, self._score_all([requests[i] for i in idx], evaluation)):
                    results[i] = out
        return results

    def _score_all(self, requests: list[ScoreRequest], evaluation: bool) -> list[dict[str, np.ndarray]]:
        scorer = self.eval_scorer if evaluation else self.scorer
        images = np.concatenate([r.images for r in requests])
        prompts = [p for r in requests for p in r.prompts]
        if hasattr(scorer, "breakdown"):
            scores, parts = scorer.breakdown(images, prompts)
        else:
            scores, parts = scorer(images, prompts), {}
        out = {self.name: check_scores(self.name, scores, len(prompts)),
               **{f"{self.name}/{k}": check_scores(self.name, v, len(prompts)) for k, v in parts.items()}}
        self.batch_sizes.append(len(prompts))
        bounds = np.cumsum([0] + [len(r.prompts) for r in requests])
        return [{k: v[a:b] for k, v in out.items()} for a, b in zip(bounds[:-1], bounds[1:])]

    def embed(self, images: np.ndarray) -> np.ndarray:
        """(n, H, W, 3) uint8 -> (n, D) unit-norm image embeddings of a CLIP-family scorer
        (the samplers' semantic signal, window.semantic.source = embedding)."""
        from ..rewards.clip_family import image_embedder

        if self.embedder is None:
            self.embedder = image_embedder(self.name, self.scorer)  # raises, naming the reward, if it has none
        return self.embedder(images)

    def recent_batch_sizes(self) -> list[int]:
        return list(self.batch_sizes[-100:])

    def actor_name(self) -> str:
        """This replica's Ray actor name (namespace 'serve'), to find it in the dashboard."""
        import ray

        return ray.get_runtime_context().get_actor_name()


@serve.deployment
class RewardIngress:
    """Fans a request out to every component and returns the weighted sum."""

    def __init__(self, spec: dict, components: dict, max_request_bytes: int = 64 << 20):
        setup_worker()
        self.spec = spec  # what it scores (reward_spec), for a run that attaches to check against its config
        self.weights = {n: s["weight"] for n, s in spec.items()}
        self.components = components  # name -> DeploymentHandle
        self.max_request_bytes = max_request_bytes

    def describe(self) -> dict:
        """reward_spec of the config this app was built from."""
        return self.spec

    async def score(self, images: np.ndarray, prompts: list[str], evaluation: bool = False) -> RewardResult:
        """The weighted reward; evaluation=True scores with each reward's evaluation form
        (what the in-run evaluation reports: scene_check pass / fail, mean of its checks)."""
        if len(images) != len(prompts):
            raise ValueError(f"{len(images)} images but {len(prompts)} prompts")
        req = ScoreRequest(np.asarray(images, dtype=np.uint8), list(prompts), bool(evaluation))
        names = list(self.components)
        results = await asyncio.gather(*(self.components[n].score.remote(req) for n in names))
        comps = {k: np.asarray(v, dtype=np.float32) for r in results for k, v in r.items()}
        total = sum(self.weights[n] * comps[n] for n in names)
        return RewardResult(np.asarray(total, dtype=np.float32), comps)

    async def __call__(self, request) -> dict:
        """HTTP: 400 for a malformed payload, 413 for one over the limits; the
        server keeps serving either way."""
        from starlette.responses import JSONResponse

        try:
            declared = int(request.headers.get("content-length") or 0)
            if declared > self.max_request_bytes:  # refuse before reading it
                raise PayloadError(413, f"request body is {declared} bytes, the limit is {self.max_request_bytes}")
            images, prompts = parse_score_request(await request.body(), self.max_request_bytes)
        except PayloadError as err:
            return JSONResponse({"error": str(err)}, status_code=err.status)
        try:
            result = await self.score(images, prompts)
        except ValueError as err:  # a scorer refused the input (e.g. a prompt it cannot use)
            return JSONResponse({"error": str(err).strip().splitlines()[-1]}, status_code=400)
        return {"scores": result.total.tolist(),  # a check that does not apply is null
                "components": {n: [None if np.isnan(x) else x for x in v.tolist()] for n, v in result.components.items()}}


QUIET = {"log_level": "WARNING", "enable_access_log": False}


def scaling_options(component_cfg) -> dict:
    """Serve deployment options for a fixed replica count or for autoscaling."""
    a = component_cfg.autoscaling
    if a is None:
        return {"num_replicas": component_cfg.num_replicas or 1}
    return {"autoscaling_config": {
        "min_replicas": a.min_replicas, "max_replicas": a.max_replicas,
        "initial_replicas": a.initial_replicas, "target_ongoing_requests": a.target_ongoing_requests,
        "upscale_delay_s": a.upscale_delay_s, "downscale_delay_s": a.downscale_delay_s,
    }}


def build_reward_app(rewards_cfg):
    """The Serve application for the configured reward components."""
    comps = {}
    for c in rewards_cfg.components:
        comps[c.name] = RewardComponent.options(
            name=f"reward_{c.name}", **scaling_options(c),
            max_ongoing_requests=max(5, 2 * c.max_batch_size),  # room to fill a batch
            ray_actor_options={"num_cpus": c.num_cpus, "num_gpus": c.num_gpus}, logging_config=QUIET,
        ).bind(c.name, c.max_batch_size, c.batch_wait_timeout_s, c.scorer_options(), c.evaluation_options())
    return RewardIngress.options(name="reward_ingress", ray_actor_options={"num_cpus": 0}, max_ongoing_requests=256,
                                  logging_config=QUIET).bind(reward_spec(rewards_cfg), comps,
                                                             int(rewards_cfg.max_request_mb * (1 << 20)))


def reward_spec(rewards_cfg) -> dict:
    """What an app built from this config scores: per component its weight and its scorer's
    options, training and evaluation forms (not how it scales, which may change while it runs)."""
    return {c.name: {"weight": c.weight, "options": c.scorer_options(), "evaluation": c.evaluation_options()}
            for c in rewards_cfg.components}


def spec_differences(served: dict, wanted: dict) -> list[str]:
    """What differs between a served app's reward_spec and a config's, one phrase each."""
    out = [f"it lacks {n!r}" for n in wanted if n not in served]
    out += [f"it also scores {n!r}" for n in served if n not in wanted]
    for n in (n for n in wanted if n in served):
        for key in ("weight", "options", "evaluation"):
            if served[n].get(key) != wanted[n][key]:
                out.append(f"{n!r} {key} {served[n].get(key)!r}, the config {wanted[n][key]!r}")
    return out


def check_attached(rewards_cfg, timeout_s: float = 60.0) -> None:
    """Refuse to train on a running app that scores something other than the config says."""
    served = reward_handle(rewards_cfg.app_name).describe.remote().result(timeout_s=timeout_s)
    diff = spec_differences(served, reward_spec(rewards_cfg))
    if diff:
        raise RewardAppError(f"reward application {rewards_cfg.app_name!r} is running but does not score what this "
                             f"run's rewards.components say: {'; '.join(diff)}. Redeploy it from this config, "
                             "or give this run another rewards.app_name")


def app_builder(args: dict):
    """Serve config entry point (`import_path: adascope_ray.cluster.serve_app:app_builder`);
    `args` are fields of the `rewards` config section, validated the same way."""
    from ..config import RewardsConfig

    return build_reward_app(RewardsConfig.model_validate(args or {}))


def start_serve(host: str, port: int, proxy_ready_timeout_s: float = 60.0) -> None:
    """Start Serve (or connect to the running instance). On a busy machine the HTTP proxy's
    worker may take longer to start than Serve's 5 s ready check, and Serve kills it while
    serve.start waits on it: the controller gets the longer bound, and a proxy replaced
    during the start is waited for once more."""
    import ray

    options = {"runtime_env": {"env_vars": {"RAY_SERVE_PROXY_READY_CHECK_TIMEOUT_S": str(proxy_ready_timeout_s)}}}
    for attempt in (1, 2):
        try:
            serve.start(http_options={"host": host, "port": port}, logging_config=QUIET, controller_options=options)
            return
        except ray.exceptions.ActorDiedError:  # the proxy Serve replaced; the controller is up
            if attempt == 2:
                raise


def deploy_rewards(rewards_cfg) -> None:
    """Deploy the app and wait (bounded) until it runs; on failure it is removed and
    RewardAppError names the app and what Serve reports."""
    from ray.serve.api import RunTarget

    start_serve(rewards_cfg.http_host, rewards_cfg.http_port, rewards_cfg.proxy_ready_timeout_s)
    serve.run_many([RunTarget(target=build_reward_app(rewards_cfg), name=rewards_cfg.app_name,
                              route_prefix=rewards_cfg.route_prefix)],
                   wait_for_ingress_deployment_creation=False, wait_for_applications_running=False)
    try:
        wait_running(rewards_cfg.app_name, rewards_cfg.ready_timeout_s)
    except RewardAppError:
        serve.delete(rewards_cfg.app_name, _blocking=False)
        raise


class RewardAppError(RuntimeError):
    """The reward application is not running and cannot be used."""


def _app_state(app_name: str):
    """(state name, the app's status or None): 'RUNNING', 'DEPLOYING', ..., or 'ABSENT'."""
    app = serve.status().applications.get(app_name)
    return (str(app.status).rsplit(".", 1)[-1] if app else "ABSENT"), app


def wait_running(app_name: str, timeout_s: float) -> None:
    start = time.monotonic()
    while True:
        state, app = _app_state(app_name)
        if state == "RUNNING":
            return
        if state in ("DEPLOY_FAILED", "UNHEALTHY") or time.monotonic() - start > timeout_s:
            deps = {n: {str(k).rsplit(".", 1)[-1]: v for k, v in d.replica_states.items()}
                    for n, d in (app.deployments.items() if app else [])}
            why = app.message if app and app.message else f"replicas: {deps}"
            raise RewardAppError(f"reward application {app_name!r} is {state} after {time.monotonic() - start:.0f} s "
                                 f"(rewards.ready_timeout_s={timeout_s:.0f}): {why}")
        time.sleep(0.5)


def app_running(app_name: str) -> bool:
    return _app_state(app_name)[0] == "RUNNING"


def ensure_rewards(rewards_cfg) -> bool:
    """Deploy or attach per rewards.deploy. Returns True when this run deployed it."""
    if rewards_cfg.deploy != "own" and app_running(rewards_cfg.app_name):
        check_attached(rewards_cfg, rewards_cfg.ready_timeout_s)
        return False
    if rewards_cfg.deploy == "attach":
        raise RewardAppError(
            f"reward application {rewards_cfg.app_name!r} is not running on this Ray cluster; "
            "start it with `serve deploy deploy/rewards.yaml`, or set rewards.deploy=own")
    deploy_rewards(rewards_cfg)
    return True


def reward_handle(app_name: str):
    return serve.get_app_handle(app_name)

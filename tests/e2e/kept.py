"""A reward application kept for the e2e session: runs that do not test the reward
app's own life attach to it instead of each deploying and removing one (about 10 s
of a short run on 2 cores). The first run with a tag deploys it; the session's
`serve.shutdown` removes it."""


def kept_rewards(tag: str) -> list[str]:
    """Overrides for a run to attach to the app kept under `tag` (deployed by the first
    such run from that run's own reward config: use one tag per reward config)."""
    return [f"rewards.app_name=e2e-{tag}", f"rewards.route_prefix=/e2e-{tag}",
            "rewards.deploy=attach_or_own", "rewards.keep_app=true"]

from hypothesis import settings

# The same examples on every run: the suite is a gate, so a fuzz failure must be
# reproducible, not a coin toss. Explore further locally with HYPOTHESIS_PROFILE=explore.
settings.register_profile("gate", derandomize=True)
settings.register_profile("explore", derandomize=False)
settings.load_profile(__import__("os").environ.get("HYPOTHESIS_PROFILE", "gate"))

"""Why a run stops early (the CLI prints these with the resume command)."""


class RunFailed(RuntimeError):
    """The run cannot go on; what was done is in the run folder."""


class LearnerLost(RunFailed):
    """The learner died: its state since the last checkpoint is gone."""

from .learner import Learner, collate

__all__ = ["Learner", "collate"]

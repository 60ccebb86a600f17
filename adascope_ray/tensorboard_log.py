"""Optional TensorBoard logging (run.tensorboard; no ray): every numeric field of each
metrics row as a scalar, its step the number of updates done (iteration + 1), in
<run>/tensorboard/. `tensorboard --logdir runs` shows every run side by side."""
from __future__ import annotations

import math
from pathlib import Path


class TensorBoardMissing(RuntimeError):
    """run.tensorboard is set but the tensorboard package is not installed."""


def require_tensorboard() -> None:
    try:
        import tensorboard  # noqa: F401
        from torch.utils.tensorboard import SummaryWriter  # noqa: F401
    except ImportError:
        raise TensorBoardMissing("run.tensorboard: the tensorboard package is not installed "
                                 "(pip install 'adascope-ray[tensorboard]')") from None


class TensorBoardLog:
    def __init__(self, run_root: str | Path, start: int = 0):
        """start: the iteration a resumed run continues from; what an earlier attempt
        logged from there on is dropped when TensorBoard reads the folder (purge_step)."""
        require_tensorboard()
        from torch.utils.tensorboard import SummaryWriter

        self.writer = SummaryWriter(str(Path(run_root) / "tensorboard"), purge_step=start + 1 if start else None)

    def record(self, row: dict) -> None:
        step = int(row["iteration"]) + 1
        for key, value in row.items():
            if key != "iteration" and isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
                self.writer.add_scalar(key, value, step)
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()

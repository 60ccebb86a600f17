"""The window heatmap's data: per iteration, the share of trained pairs at each step."""
import numpy as np
from PIL import Image

from adascope_ray.charts import window_heatmap, window_matrix


def test_window_matrix_is_each_iterations_share_of_pairs_per_step(tmp_path):
    rows = [{"iteration": 0, "window_hist": [4, 4, 0, 0]},     # [0, 2): half each
            {"iteration": 1, "window_hist": [0, 2, 6, 0]},     # 1/4 at step 1, 3/4 at step 2
            {"iteration": 2, "window_hist": [0, 0, 0, 0]},     # nothing trained (all groups dropped)
            {"iteration": 3, "window_hist": [1.5, 1.5, 1.5, 1.5]}]  # fraction strategy: mean over passes
    expected = np.array([[0.5, 0.0, 0.0, 0.25],
                         [0.5, 0.25, 0.0, 0.25],
                         [0.0, 0.75, 0.0, 0.25],
                         [0.0, 0.0, 0.0, 0.25]])              # (K = 4 steps, T = 4 iterations)
    np.testing.assert_allclose(window_matrix(rows), expected)
    window_heatmap(tmp_path / "window.png", rows)
    with Image.open(tmp_path / "window.png") as im:
        assert im.size == (640, 320)

import numpy as np
import pytest

from tfxmed.metrics.diagnostics import map_specificity, max_sensitivity


def test_specificity_separates_image_dependent_maps_from_one_blob(rng):
    blob = np.zeros((8, 8))
    blob[2:5, 2:5] = 1.0
    same = np.stack([blob * rng.uniform(0.5, 2.0) + rng.normal(0, 0.01, blob.shape) for _ in range(20)])
    moving = np.zeros((20, 8, 8))
    for i in range(20):
        y, x = rng.integers(0, 6, 2)
        moving[i, y : y + 3, x : x + 3] = 1.0
    constant = map_specificity(same)
    assert constant["near_constant"] and constant["specificity"] < 0.1
    varied = map_specificity(moving)
    assert not varied["near_constant"] and varied["specificity"] > 0.5


def test_all_constant_maps_are_near_constant():
    result = map_specificity(np.ones((5, 4, 4)))
    assert result["near_constant"] and result["constant_maps"] == 1.0
    with pytest.raises(ValueError, match="at least 2"):
        map_specificity(np.ones((1, 4, 4)))


def test_max_sensitivity_is_zero_for_an_input_independent_map_and_grows_with_dependence(rng):
    images = rng.random((4, 8, 8, 1)).astype("float32")
    fixed = max_sensitivity(lambda x, t: np.ones(x.shape[:3]), images, None)
    assert fixed["max_sensitivity"] == 0.0
    gentle = max_sensitivity(lambda x, t: x[..., 0], images, None, radius=0.01)["max_sensitivity"]
    steep = max_sensitivity(lambda x, t: x[..., 0] ** 8, images, None, radius=0.01)["max_sensitivity"]
    assert 0 < gentle < steep

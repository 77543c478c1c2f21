import numpy as np
import pytest

from tfxmed.metrics.faithfulness import average_drop_increase, deletion_insertion, perturbation_curves


def _region_case(size=8, region=(2, 6, 2, 6)):
    """Image of ones on a 4×4 region (a quarter of the pixels); 'model' = mean intensity / 0.25."""
    image = np.zeros((1, size, size, 1), np.float32)
    top, bottom, left, right = region
    image[0, top:bottom, left:right] = 1.0
    fraction = image.mean()

    def predict(x):
        p = x.reshape(len(x), -1).mean(-1) / fraction
        return np.stack([1 - p, p], -1)

    return image, predict, fraction


def test_perfect_and_reversed_maps_give_the_known_areas():
    image, predict, fraction = _region_case()
    good = image[..., 0] + 1e-3 * np.random.default_rng(0).random((1, 8, 8))  # ranks the region first
    target = np.array([[0.0, 1.0]])
    # Deletion with a perfect map: linear drop from 1 to 0 over the first quarter, then 0 → area f/2.
    scores = deletion_insertion(predict, image, good, target, steps=16)
    assert scores["deletion_auc"] == pytest.approx(fraction / 2, abs=1e-6)
    reversed_scores = deletion_insertion(predict, image, -good, target, steps=16)
    assert reversed_scores["deletion_auc"] == pytest.approx(1 - fraction / 2, abs=1e-6)
    assert scores["insertion_auc"] > reversed_scores["insertion_auc"]


def test_insertion_curve_ends_at_the_original_and_starts_at_the_blur():
    image, predict, _ = _region_case()
    curves = perturbation_curves(predict, image, image[..., 0], np.array([[0.0, 1.0]]), steps=4, mode="insertion",
                                 blur_sigma=1.0)
    assert curves.shape == (1, 5)
    assert curves[0, -1] == pytest.approx(1.0)
    assert curves[0, 0] == pytest.approx(1.0, abs=0.05)  # blurring keeps the mean (mass stays in the image)
    deletion = perturbation_curves(predict, image, image[..., 0], np.array([[0.0, 1.0]]), steps=4, mode="deletion")
    np.testing.assert_allclose(deletion[0], [1.0, 0.0, 0.0, 0.0, 0.0], atol=1e-6)  # the region is the top quarter


def test_bad_map_shape_is_named():
    image, predict, _ = _region_case()
    with pytest.raises(ValueError, match="maps must have shape"):
        deletion_insertion(predict, image, np.zeros((1, 4, 4)), np.array([[0.0, 1.0]]))


def test_average_drop_and_increase_by_hand():
    image, predict, _ = _region_case()
    target = np.array([[0.0, 1.0]])
    region = image[..., 0]
    assert average_drop_increase(predict, image, region, target) == {  # keeps the region: no drop
        "average_drop_percent": 0.0, "increase_in_confidence_percent": 0.0}
    half = region * 0.5
    half[0, 0, 0] = 1.0  # the map's max sits outside the region, which is scaled to 0.5
    assert average_drop_increase(predict, image, half, target)["average_drop_percent"] == pytest.approx(50.0)

    def darker_is_likelier(x):  # p = 1 − mean intensity
        p = 1.0 - x.reshape(len(x), -1).mean(-1)
        return np.stack([1 - p, p], -1)

    grey = np.full((1, 8, 8, 1), 0.5, np.float32)
    stripes = np.tile([0.0, 1.0], 32).reshape(1, 8, 8)  # keeps half the pixels: mean 0.25, p 0.5 → 0.75
    result = average_drop_increase(darker_is_likelier, grey, stripes, target)
    assert result == {"average_drop_percent": 0.0, "increase_in_confidence_percent": 100.0}

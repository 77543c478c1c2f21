import numpy as np
import pytest

from tfxmed.metrics.road import noisy_linear_impute, road, road_curves


def test_imputation_recovers_a_linear_image_exactly_and_keeps_known_pixels():
    y, x = np.mgrid[0:16, 0:16].astype(np.float64)
    image = np.stack([0.3 * y - 0.2 * x + 1.0, 0.05 * x + 2.0], -1)  # linear: harmonic under the symmetric stencil
    removed = np.zeros((16, 16), bool)
    removed[3:9, 4:12] = True
    removed[12, 2] = True
    imputed = noisy_linear_impute(image, removed, noise=0.0)
    assert np.allclose(imputed, image, atol=1e-9)
    holes = image.copy()
    holes[removed] = 99.0  # what was in the removed pixels must not matter
    assert np.allclose(noisy_linear_impute(holes, removed, noise=0.0), image, atol=1e-9)
    noisy = noisy_linear_impute(image, removed, noise=0.05, rng=np.random.default_rng(1))
    assert np.array_equal(noisy[~removed], image[~removed])
    assert np.std(noisy[removed] - image[removed]) == pytest.approx(0.05, rel=0.2)


def test_imputed_value_is_the_neighbour_weighted_mean():
    image = np.zeros((3, 3, 1))
    image[0, 1] = image[1, 0] = 6.0  # direct neighbours (weight 1/6 each)
    image[0, 0] = 12.0  # a diagonal neighbour (weight 1/12)
    removed = np.zeros((3, 3), bool)
    removed[1, 1] = True
    expected = (6 / 6 + 6 / 6 + 12 / 12) / (4 / 6 + 4 / 12)
    assert noisy_linear_impute(image, removed, noise=0.0)[1, 1, 0] == pytest.approx(expected)


def _region_model():
    image = np.zeros((1, 8, 8, 1), np.float32)
    image[0, 2:6, 2:6] = 1.0

    def predict(x):
        p = x.reshape(len(x), -1).mean(-1) / 0.25
        return np.stack([1 - p, p], -1)

    return image, predict


def test_road_ranks_a_faithful_map_above_a_reversed_one():
    image, predict = _region_model()
    good = image[..., 0] + 1e-3 * np.random.default_rng(0).random((1, 8, 8))
    target = np.array([[0.0, 1.0]])
    morf = road_curves(predict, image, good, target, "morf", fractions=(0.25,), noise=0.0)
    assert morf[0, 0] == pytest.approx(0.0, abs=1e-6)  # the region is gone and imputed from zeros
    lerf = road_curves(predict, image, good, target, "lerf", fractions=(0.25,), noise=0.0)
    assert lerf[0, 0] >= 1.0  # background imputed from its neighbours: the region's mass stays
    faithful, reversed_ = road(predict, image, good, target, noise=0.0), road(predict, image, -good, target, noise=0.0)
    assert faithful["road_morf"] < reversed_["road_morf"] and faithful["road_lerf"] > reversed_["road_lerf"]
    assert len(faithful["road_morf_curve"]) == len(faithful["road_fractions"]) == 9
    with pytest.raises(ValueError, match="order"):
        road_curves(predict, image, good, target, "middle")

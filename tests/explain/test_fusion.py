import numpy as np
import pytest

from tfxmed.explain import Fusion, make_explainer
from tfxmed.metrics.maps import rank_per_map


def test_fusion_is_the_weighted_mean_of_normalised_components(hand_model, rng):
    images = rng.normal(size=(2, 4, 4, 1)).astype("float32")
    fusion = make_explainer("fusion", hand_model, weights={"gradcam": 0.4, "ig": 0.4, "saliency": 0.2},
                            smoothing_sigma=0.0, options={"gradcam": {"layer": "features"}, "ig": {"steps": 8}})
    assert isinstance(fusion, Fusion)
    components = fusion.component_maps(images, 1)
    fused = fusion(images, 1)
    expected = (0.4 * components["gradcam"] + 0.4 * components["ig"] + 0.2 * components["saliency"]) / 1.0
    np.testing.assert_allclose(fused, expected, rtol=1e-6)
    for maps in components.values():
        assert maps.min() >= 0 and maps.max() <= 1


def test_rank_normalisation_and_unknown_normalisation(hand_model, rng):
    images = rng.normal(size=(2, 4, 4, 1)).astype("float32")
    explainers = {"saliency": make_explainer("saliency", hand_model)}
    ranked = Fusion(explainers, {"saliency": 1.0}, normalization="rank", smoothing_sigma=0.0).component_maps(images, 1)
    np.testing.assert_allclose(ranked["saliency"], rank_per_map(np.maximum(explainers["saliency"](images, 1), 0)))
    with pytest.raises(ValueError, match="minmax, rank"):
        Fusion(explainers, {"saliency": 1.0}, normalization="zscore")


def test_bad_fusion_weights_and_unknown_method(hand_model):
    with pytest.raises(ValueError, match="non-negative"):
        make_explainer("fusion", hand_model, weights={"gradcam": -1.0})
    with pytest.raises(ValueError, match="not explanation methods"):
        make_explainer("fusion", hand_model, weights={"gradcam": 0.5, "fusion": 0.5})
    with pytest.raises(ValueError, match="unknown explanation method 'gradcamz'"):
        make_explainer("gradcamz", hand_model)

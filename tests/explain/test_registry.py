"""`make_explainer`: names, the default layer only where a method takes one, and precision only where
a method can compute in it."""

import inspect

import numpy as np
import pytest

from tests.explain.references import linear_model
from tfxmed.explain import METHODS, make_explainer


def test_make_explainer_gives_a_default_layer_only_to_methods_that_take_one(hand_model):
    from tfxmed.explain import make_explainer

    assert make_explainer("gradcam", hand_model, default_layer="features").layer == "features"
    assert make_explainer("ig", hand_model, default_layer="features", steps=4) is not None  # IG has no layer
    with pytest.raises(TypeError):  # an explicit layer is still strict
        make_explainer("ig", hand_model, layer="features")


def test_every_layered_method_gets_the_default_layer(hand_model):
    layered = [name for name, method in METHODS.items() if "layer" in inspect.signature(method).parameters]
    assert set(layered) == {"gradcam", "gradcampp", "xgradcam", "layercam", "hirescam", "eigencam", "eigengradcam",
                            "scorecam"}
    for name in layered:
        assert make_explainer(name, hand_model, default_layer="features").layer == "features", name
    # An explicit layer wins over the default.
    assert make_explainer("gradcam", hand_model, default_layer="nowhere", layer="features").layer == "features"


def test_unknown_name_lists_every_choice(hand_model):
    with pytest.raises(ValueError, match="unknown explanation method 'grad_cam'; choose from ") as error:
        make_explainer("grad_cam", hand_model)
    assert str(error.value).endswith(", ".join(METHODS))


def test_precision_is_refused_by_the_methods_that_compute_in_float32_only(hand_model):
    float32_only = [name for name, method in METHODS.items() if name != "fusion" and not any(
        p.name == "precision" or p.kind == p.VAR_KEYWORD for p in inspect.signature(method).parameters.values())]
    assert float32_only == ["lrp"]
    with pytest.raises(ValueError, match=r"method 'lrp' computes in float32 only; drop precision='bfloat16'"):
        make_explainer("lrp", hand_model, precision="bfloat16")
    # float32 itself is dropped, not passed on (LRP takes no `precision`; it needs a chain of standard layers).
    assert make_explainer("lrp", linear_model(4), precision="float32")(np.ones((1, 4, 4, 1), np.float32), 0).shape == (
        1, 4, 4)
    assert make_explainer("saliency", hand_model, precision="bfloat16").precision == "bfloat16"


def test_fusion_builds_its_components_with_the_default_layer_and_names_unknown_ones(hand_model):
    fusion = make_explainer("fusion", hand_model, default_layer="features", weights={"gradcam": 0.5, "ig": 0.5},
                            options={"ig": {"steps": 4}})
    assert set(fusion.explainers) == {"gradcam", "ig"} and fusion.explainers["gradcam"].layer == "features"
    assert fusion.explainers["ig"].steps == 4
    with pytest.raises(ValueError, match=r"fusion components \['fusion', 'nope'\] are not explanation methods"):
        make_explainer("fusion", hand_model, weights={"gradcam": 0.5, "fusion": 0.2, "nope": 0.3})

"""The run's default explanation: chosen by config, or by `auto` on the validation masks."""

import numpy as np

from tests.helpers import TINY_CONFIG
from tfxmed.config import load_config
from tfxmed.default_explanation import (
    FALLBACK,
    SERVED_FUSION,
    Choice,
    _candidate_maps,
    candidates,
    choose,
    explainer_for,
)
from tfxmed.evaluation import collect_split
from tfxmed.explain import Fusion, GradCam, IntegratedGradients
from tfxmed.storage import load_manifest


def _config(*overrides):
    return load_config(TINY_CONFIG, list(overrides))


def test_a_named_method_is_used_as_configured(tiny_model):
    assert choose(tiny_model, _config("explain.method=gradcam"), None) == Choice("gradcam", "csam")
    layered = _config("explain.method=gradcam", "explain.layer=conv1_1_relu")
    assert choose(tiny_model, layered, None).layer == "conv1_1_relu"
    assert choose(tiny_model, _config("explain.method=ig"), None) == Choice("ig", None)
    assert isinstance(explainer_for(tiny_model, Choice("gradcam", "csam")), GradCam)
    assert isinstance(explainer_for(tiny_model, Choice("ig")), IntegratedGradients)


def test_fusion_is_the_designs_offline_and_gradcam_plus_ig_when_served(tiny_model):
    offline = explainer_for(tiny_model, Choice("fusion", "csam"))
    served = explainer_for(tiny_model, Choice("fusion", "csam"), serving=True)
    assert isinstance(offline, Fusion) and set(offline.explainers) == {"gradcam", "ig", "lime"}
    assert served.weights == SERVED_FUSION and served.in_graph and not offline.in_graph


def test_auto_picks_the_best_pointing_game_on_validation(tiny_model, tiny_dataset):
    config = _config("explain.method=auto", "explain.pointing_tolerance=2")
    val = collect_split(tiny_dataset, load_manifest(tiny_dataset), config, "val")
    choice = choose(tiny_model, config, val)
    names = [c.name for c in candidates(tiny_model, config)]
    assert sorted(choice.candidates) == sorted(names) and "gradcam@conv1_1_relu" in names and "ig" in names
    best = max(choice.candidates.values(), key=lambda r: (r["pointing_game"], r["iou"]))
    assert choice.candidates[choice.name] == best and "validation" in choice.chosen_by
    no_masks = {**val, "has_mask": np.zeros_like(val["has_mask"])}
    fallback = choose(tiny_model, config, no_masks)
    assert (fallback.method, fallback.layer) == (FALLBACK, "csam") and "fallback" in fallback.chosen_by


def test_auto_compares_ig_baselines_and_smoothing_and_scores_what_the_explainer_serves(tiny_model, tiny_dataset):
    config = _config("explain.method=auto", "explain.pointing_tolerance=2")
    names = [c.name for c in candidates(tiny_model, config)]
    size = tiny_model.inputs[0].shape[1]
    blurred = f"ig[baseline=blurred][blur_sigma={2.0 * size / 64:g}][steps=16]"
    assert blurred in names and f"{blurred}[smoothing_sigma={1.5 * size / 64:g}]" in names
    assert f"fusion@csam[product][ig:baseline=blurred,blur_sigma={2.0 * size / 64:g},steps=16]" in names
    # auto blurs the unsmoothed maps on the host; the explainer blurs in its graph: the same maps
    val = collect_split(tiny_dataset, load_manifest(tiny_dataset), config, "val")
    smoothed = Choice("ig", options={"baseline": "blurred", "blur_sigma": 1.0, "smoothing_sigma": 1.0})
    unsmoothed = Choice("ig", options={"baseline": "blurred", "blur_sigma": 1.0})
    targets = val["label"][:4].argmax(-1)
    maps = _candidate_maps(tiny_model, [unsmoothed, smoothed], val["image"][:4], targets)
    np.testing.assert_allclose(maps[smoothed.name], explainer_for(tiny_model, smoothed)(val["image"][:4], targets),
                               rtol=1e-4, atol=1e-6)
    assert not np.allclose(maps[smoothed.name], maps[unsmoothed.name])

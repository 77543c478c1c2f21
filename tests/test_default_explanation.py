"""The run's default explanation: chosen by config, or by `auto` on the validation masks."""

import numpy as np

from tests.helpers import TINY_CONFIG
from tfxmed.config import load_config
from tfxmed.data.selection import lesion_examples
from tfxmed.default_explanation import (
    FALLBACK,
    SERVED_FUSION,
    TIE_STANDARD_ERRORS,
    Choice,
    _best,
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
    top = max(r["pointing_game"] for r in choice.candidates.values())
    images = len(lesion_examples(val))
    margin = TIE_STANDARD_ERRORS * np.sqrt(top * (1 - top) / images) + 1e-12
    tied = [r for r in choice.candidates.values() if r["pointing_game"] >= top - margin]
    assert choice.candidates[choice.name]["iou"] == max(r["iou"] for r in tied) and "validation" in choice.chosen_by
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


def test_auto_breaks_a_pointing_game_tie_within_one_standard_error_by_iou():
    # the L_exp ablation's seed 44 (160 images): a one-image pointing edge must not buy a map half as tight
    raw, smoothed, gradcam = Choice("ig"), Choice("ig", options={"smoothing_sigma": 1.5}), Choice("gradcam", "csam")
    table = {raw.name: {"pointing_game": 147 / 160, "iou": 0.13},
             smoothed.name: {"pointing_game": 146 / 160, "iou": 0.35},
             gradcam.name: {"pointing_game": 0.50, "iou": 0.40}}
    assert _best([raw, smoothed, gradcam], table, 160) == smoothed
    # beyond one standard error (0.022 here) the pointing game wins whatever the IoU
    table[smoothed.name]["pointing_game"] = 140 / 160
    assert _best([raw, smoothed, gradcam], table, 160) == raw
    # a perfect pointing game has no spread: only exact ties go to IoU
    table = {raw.name: {"pointing_game": 1.0, "iou": 0.1}, smoothed.name: {"pointing_game": 0.99, "iou": 0.5}}
    assert _best([raw, smoothed], table, 160) == raw

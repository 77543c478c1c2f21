"""Explainer speed, side by side with the TF peers, in one run; prints JSON.

For each model (small CNN at 64 px, ResNet50+CSAM at 64 px and 224 px; weights=None, batch 16) it
reports one forward pass in ms/image and, for every method, ms/image and the ratio to that forward
pass, in float32 and (`<method>@bfloat16`) with `precision="bfloat16"`, plus how far the bfloat16 maps
are from the float32 ones. Peers on the same model and inputs: tf-keras-vis (Gradcam, GradcamPlusPlus,
Scorecam, Saliency, SmoothGrad) and, when $XPLIQUE_PYTHON points at a Python with xplique installed
(xplique 2.0.2 pins tensorflow<=2.20, so it lives in its own virtual environment), xplique, also on the
same weights under Keras' mixed_bfloat16 policy. Also the max absolute difference between our Grad-CAM
and each peer's on the same layer (both in [0, 1]) and between our IG and xplique's (same quadrature),
and `targets`: the issue's speed ratios read off the table.

    python scripts/benchmark_explain.py [--quick] > benchmark_explain.json
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import subprocess
import sys
import tempfile
import time

import numpy as np
from scipy.ndimage import zoom

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import keras  # noqa: E402
import tensorflow as tf  # noqa: E402

from tfxmed.config import ModelConfig, SmallCnnConfig  # noqa: E402
from tfxmed.explain import make_explainer  # noqa: E402
from tfxmed.metrics.maps import minmax_per_map  # noqa: E402
from tfxmed.models import build_model  # noqa: E402


def _timed(function, repeats: int = 2, warm_up=None) -> float:
    (warm_up or function)()  # warm-up: tracing and compilation are not counted
    started = time.perf_counter()
    for _ in range(repeats):
        function()
    return (time.perf_counter() - started) / repeats


def _models(quick: bool):
    small = ModelConfig(name="small_cnn", attention=True, small_cnn=SmallCnnConfig(width=16, blocks=[2, 2, 2]))
    yield "small_cnn_64", build_model(small, (64, 64, 1), 2, False), 64
    yield "resnet50_csam_64", build_model(ModelConfig(), (64, 64, 1), 2, False), 64
    if not quick:
        yield "resnet50_csam_224", build_model(ModelConfig(), (224, 224, 1), 2, False), 224


# (method, options, images to time at 64 px, at 224 px): the costly methods run on fewer images.
# IG: steps=31 intervals = 32 gradient evaluations, the very trapezoid xplique computes for its steps=32.
IG = {"steps": 31}
OURS = [
    ("gradcam", {}, 16, 16), ("gradcampp", {}, 16, 16), ("xgradcam", {}, 16, 16), ("layercam", {}, 16, 16),
    ("hirescam", {}, 16, 16), ("eigencam", {}, 16, 16), ("eigengradcam", {}, 16, 16), ("scorecam", {}, 2, 0),
    ("saliency", {}, 16, 16), ("smoothgrad", {"samples": 16}, 4, 2), ("ig", IG, 4, 2),
    ("occlusion", {"patch": 8, "stride": 8}, 4, 1), ("lime", {"samples": 128}, 2, 1),
    ("kernelshap", {"samples": 128}, 2, 1),
]
# The same methods computed in bfloat16 (`precision="bfloat16"`), reported as "<method>@bfloat16".
LOW_PRECISION = ("gradcam", "gradcampp", "saliency", "smoothgrad", "ig", "occlusion", "lime")


def _peers_tf_keras_vis(model, images, layer, targets, forward):
    results, maps = {}, {}
    try:
        from tf_keras_vis.gradcam import Gradcam
        from tf_keras_vis.gradcam_plus_plus import GradcamPlusPlus
        from tf_keras_vis.saliency import Saliency
        from tf_keras_vis.scorecam import Scorecam
        from tf_keras_vis.utils.model_modifiers import ReplaceToLinear
        from tf_keras_vis.utils.scores import CategoricalScore
    except Exception as error:  # noqa: BLE001 - record any failure of the peer
        return {"error": f"{type(error).__name__}: {error}"}, maps
    # By default tf-keras-vis walks back from `penultimate_layer` to a Conv layer (here CSAM's 7×7 spatial
    # conv); seek_penultimate_conv_layer=False makes it explain the named layer, as we and xplique do.
    # Each peer explainer is built once (as a user would) and warmed up on the timed inputs.
    linear = dict(model_modifier=ReplaceToLinear(), clone=True)
    gradcam, gradcampp = Gradcam(model, **linear), GradcamPlusPlus(model, **linear)
    scorecam, saliency = Scorecam(model, **linear), Saliency(model, **linear)
    score = lambda x: CategoricalScore(list(targets[: len(x)]))  # noqa: E731
    at_layer = {"penultimate_layer": layer, "seek_penultimate_conv_layer": False}
    jobs = {
        "Gradcam": (lambda x: gradcam(score(x), x, **at_layer), 16),
        "GradcamPlusPlus": (lambda x: gradcampp(score(x), x, **at_layer), 16),
        "Scorecam": (lambda x: scorecam(score(x), x, **at_layer, max_N=-1), 2 if images.shape[1] <= 64 else 0),
        "Saliency": (lambda x: saliency(score(x), x), 16),
        "SmoothGrad": (lambda x: saliency(score(x), x, smooth_samples=16, smooth_noise=0.15), 4),
    }
    for name, (run, count) in jobs.items():
        if count == 0:
            results[name] = {"skipped": "too slow at this size on CPU (1024 channel forwards per image)"}
            continue
        try:
            subset = images[:count]
            if name == "Gradcam":
                maps[name] = np.asarray(run(subset))
            seconds = _timed(lambda run=run, subset=subset: run(subset), repeats=1)
            results[name] = {"ms_per_image": 1000 * seconds / count, "ratio_to_forward": seconds / count / forward}
        except Exception as error:  # noqa: BLE001
            results[name] = {"error": f"{type(error).__name__}: {str(error)[:300]}"}
    return results, maps


def _peers_xplique(name: str, size: int, model, ours_gradcam: np.ndarray, ours_ig: np.ndarray) -> dict:
    python = os.environ.get("XPLIQUE_PYTHON")
    if not python:
        return {"error": "not run: set XPLIQUE_PYTHON to a Python with xplique installed "
                          "(xplique 2.0.2 pins tensorflow<=2.20)"}
    script = os.path.join(os.path.dirname(os.path.abspath(__file__)), "_xplique_peer.py")
    with tempfile.TemporaryDirectory() as folder:
        maps_path, weights_path = os.path.join(folder, "GradCAM.npy"), os.path.join(folder, "model.weights.h5")
        model.save_weights(weights_path)
        result = subprocess.run([python, script, name, str(size), folder, weights_path], capture_output=True,
                                text=True, timeout=3000)
        if result.returncode != 0:
            return {"error": result.stderr.strip().splitlines()[-1] if result.stderr.strip() else "failed"}
        report = json.loads(result.stdout.strip().splitlines()[-1])
        if os.path.exists(maps_path):
            # xplique upsamples ReLU(Σ w·A) bicubically and does not normalise: do the same to our
            # feature-resolution map, then scale both to [0, 1] by their maxima.
            theirs = np.load(maps_path).reshape(ours_gradcam.shape[0], size, size)
            ours = tf.image.resize(ours_gradcam[..., None], (size, size), method="bicubic").numpy()[..., 0]
            unit = lambda m: np.maximum(m, 0) / np.maximum(m.max(axis=(1, 2), keepdims=True), 1e-12)  # noqa: E731
            report["gradcam_max_abs_difference_vs_ours"] = float(np.abs(unit(theirs) - unit(ours)).max())
        ig_path = os.path.join(folder, "IntegratedGradients.npy")
        if os.path.exists(ig_path):  # same 32-point trapezoid: the attributions should agree
            theirs = np.load(ig_path).sum(-1)
            report["ig_max_relative_difference_vs_ours"] = _relative_gap(ours_ig, theirs)
    return report


def _relative_gap(reference: np.ndarray, other: np.ndarray) -> float:
    return float(np.abs(reference - other).max() / max(float(np.abs(reference).max()), 1e-12))


def _precision_check(model, images, targets) -> dict:
    """How far bfloat16 maps are from float32 ones (Grad-CAM on 16 images, IG on 2)."""
    full, low = (make_explainer("gradcam", model, batch_size=16, precision=p)(images, targets)
                 for p in ("float32", "bfloat16"))
    difference = np.abs(full - low)
    ig_full, ig_low = (make_explainer("ig", model, batch_size=16, precision=p, **IG) for p in ("float32", "bfloat16"))
    first, second = ig_full(images[:2], targets[:2]), ig_low(images[:2], targets[:2])
    return {
        "gradcam_mean_abs_difference": float(difference.mean()), "gradcam_max_abs_difference": float(difference.max()),
        "ig_max_relative_difference": _relative_gap(first, second),
        "ig_correlation": float(np.corrcoef(first.ravel(), second.ravel())[0, 1]),
        "ig_completeness_error_float32": float(ig_full.completeness_error(images[:2], targets[:2]).mean()),
        "ig_completeness_error_bfloat16": float(ig_low.completeness_error(images[:2], targets[:2]).mean()),
    }


def _speedups(entry: dict) -> dict:
    """The issue's targets, read off one model's entry: our time / the peers'."""
    ms = lambda row: row.get("ms_per_image") if isinstance(row, dict) else None  # noqa: E731
    peers = [ms(entry["tf_keras_vis"].get("Gradcam", {})), ms(entry["xplique"].get("GradCAM", {}))]
    fastest = min([value for value in peers if value], default=None)
    summary = {"gradcam_ratio_to_forward": entry["ours"]["gradcam"]["ratio_to_forward"]}
    for precision, suffix in (("float32", ""), ("bfloat16", "@bfloat16")):
        if fastest:
            summary[f"gradcam_{precision}_speedup_vs_fastest_peer"] = fastest / ms(entry["ours"][f"gradcam{suffix}"])
        xplique_ig = ms(entry["xplique"].get("IntegratedGradients", {}))
        if xplique_ig:
            summary[f"ig_{precision}_speedup_vs_xplique"] = xplique_ig / ms(entry["ours"][f"ig{suffix}"])
    for method in ("GradCAM", "IntegratedGradients"):  # against xplique given the same weights in mixed_bfloat16
        theirs = ms(entry["xplique"].get(f"{method}@mixed_bfloat16", {}))
        ours = "gradcam" if method == "GradCAM" else "ig"
        if theirs:
            speedup = theirs / ms(entry["ours"][f"{ours}@bfloat16"])
            summary[f"{ours}_bfloat16_speedup_vs_xplique_mixed_bfloat16"] = speedup
    return summary


def _measure(quick: bool) -> dict:
    keras.utils.set_random_seed(0)
    machine = {"cpu_count": os.cpu_count(), "python": platform.python_version(), "tensorflow": tf.__version__,
               "keras": keras.__version__}
    report = {"machine": machine, "batch": 16, "models": {}}
    for name, model, size in _models(quick):
        images = np.random.default_rng(0).normal(size=(16, size, size, 1)).astype("float32")
        targets = np.ones(16, dtype=int)
        compiled = tf.function(lambda x: model(x, training=False))  # noqa: B023 - used in this iteration only
        forward = _timed(lambda: compiled(images).numpy(), repeats=3) / 16  # noqa: B023 - called at once
        entry = {"forward_ms_per_image": 1000 * forward, "ours": {}}
        runs = [(method, options, c64, c224) for method, options, c64, c224 in OURS]
        runs += [(f"{method}@bfloat16", {**options, "precision": "bfloat16"}, c64, c224)
                 for method, options, c64, c224 in OURS if method in LOW_PRECISION]
        for key, options, count_64, count_224 in runs:
            count = count_64 if size <= 64 else count_224
            if count == 0:
                entry["ours"][key] = {"skipped": "too slow at this size on CPU (1024 channel forwards per image)"}
                continue
            explainer = make_explainer(key.split("@")[0], model, batch_size=16, **options)
            subset = images[:count]
            seconds = _timed(lambda: explainer(subset, targets[:count]), repeats=1)  # noqa: B023 - called at once
            entry["ours"][key] = {"ms_per_image": 1000 * seconds / count, "ratio_to_forward": seconds / count / forward}
        entry["bfloat16_vs_float32"] = _precision_check(model, images, targets)
        layer = "csam"
        peers, peer_maps = _peers_tf_keras_vis(model, images, layer, targets, forward)
        entry["tf_keras_vis"] = peers
        # Peers upsample differently; compare on the same upsampling of our feature-resolution map.
        feature_resolution = make_explainer("gradcam", model, upsample_to_input=False, normalize=False)(images, targets)
        if "Gradcam" in peer_maps:
            # tf-keras-vis: scipy linear-spline zoom, then per-map min-max.
            factor = (1, size / feature_resolution.shape[1], size / feature_resolution.shape[2])
            ours = zoom(feature_resolution, factor, order=1)
            difference = minmax_per_map(ours, floor=1e-12) - minmax_per_map(peer_maps["Gradcam"], floor=1e-12)
            entry["gradcam_max_abs_difference_vs_tf_keras_vis"] = float(np.abs(difference).max())
        count = 4 if size <= 64 else 2
        ours_ig = make_explainer("ig", model, batch_size=16, **IG)(images[:count], targets[:count])
        entry["xplique"] = _peers_xplique(name, size, model, feature_resolution, ours_ig)
        entry["targets"] = _speedups(entry)
        report["models"][name] = entry
        print(json.dumps({name: entry}), file=sys.stderr, flush=True)
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="skip the 224-px ResNet50")
    args = parser.parse_args()
    with contextlib.redirect_stdout(sys.stderr):  # peers' progress bars must not corrupt the JSON
        report = _measure(args.quick)
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()

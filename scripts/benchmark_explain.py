"""Explainer speed, side by side with the TF peers, in one run; prints JSON.

For each model (small CNN at 64 px, ResNet50+CSAM at 64 px and 224 px; weights=None, batch 16) it
reports one forward pass in ms/image and, for every method, ms/image and the ratio to that forward
pass. Peers on the same model and inputs: tf-keras-vis (Gradcam, GradcamPlusPlus, Scorecam,
Saliency, SmoothGrad) and, when $XPLIQUE_PYTHON points at a Python with xplique installed (xplique
2.0.2 pins tensorflow<=2.20, so it lives in its own virtual environment), xplique. Also the max
absolute difference between our Grad-CAM and tf-keras-vis's on the same layer (both in [0, 1]).

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

from tfxmed.config import ModelConfig  # noqa: E402
from tfxmed.explain import make_explainer  # noqa: E402
from tfxmed.models import build_model  # noqa: E402


def _timed(function, repeats: int = 2, warm_up=None) -> float:
    (warm_up or function)()  # warm-up: tracing and compilation are not counted
    started = time.perf_counter()
    for _ in range(repeats):
        function()
    return (time.perf_counter() - started) / repeats


def _models(quick: bool):
    yield "small_cnn_64", build_model(ModelConfig(name="small_cnn", width=16, blocks=[2, 2, 2], attention=True), (64, 64, 1), 2, False), 64
    yield "resnet50_csam_64", build_model(ModelConfig(), (64, 64, 1), 2, False), 64
    if not quick:
        yield "resnet50_csam_224", build_model(ModelConfig(), (224, 224, 1), 2, False), 224


# (method, options, images to time at 64 px, at 224 px): the costly methods run on fewer images.
OURS = [
    ("gradcam", {}, 16, 16), ("gradcampp", {}, 16, 16), ("xgradcam", {}, 16, 16), ("layercam", {}, 16, 16),
    ("hirescam", {}, 16, 16), ("eigencam", {}, 16, 16), ("eigengradcam", {}, 16, 16), ("scorecam", {}, 2, 0),
    ("saliency", {}, 16, 16), ("smoothgrad", {"samples": 16}, 4, 2), ("ig", {"steps": 32}, 4, 2),
    ("occlusion", {"patch": 8, "stride": 8}, 4, 1), ("lime", {"samples": 128}, 2, 1), ("kernelshap", {"samples": 128}, 2, 1),
]


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
    jobs = {
        "Gradcam": (lambda x: gradcam(CategoricalScore(list(targets[: len(x)])), x, penultimate_layer=layer, seek_penultimate_conv_layer=False), 16),
        "GradcamPlusPlus": (lambda x: gradcampp(CategoricalScore(list(targets[: len(x)])), x, penultimate_layer=layer, seek_penultimate_conv_layer=False), 16),
        "Scorecam": (lambda x: scorecam(CategoricalScore(list(targets[: len(x)])), x, penultimate_layer=layer, seek_penultimate_conv_layer=False, max_N=-1), 2 if images.shape[1] <= 64 else 0),
        "Saliency": (lambda x: saliency(CategoricalScore(list(targets[: len(x)])), x), 16),
        "SmoothGrad": (lambda x: saliency(CategoricalScore(list(targets[: len(x)])), x, smooth_samples=16, smooth_noise=0.15), 4),
    }
    for name, (run, count) in jobs.items():
        if count == 0:
            results[name] = {"skipped": "too slow at this size on CPU (1024 channel forwards per image)"}
            continue
        try:
            subset = images[:count]
            if name == "Gradcam":
                maps[name] = np.asarray(run(subset))
            seconds = _timed(lambda: run(subset), repeats=1)
            results[name] = {"ms_per_image": 1000 * seconds / count, "ratio_to_forward": seconds / count / forward}
        except Exception as error:  # noqa: BLE001
            results[name] = {"error": f"{type(error).__name__}: {str(error)[:300]}"}
    return results, maps


def _peers_xplique(name: str, size: int, model, ours_gradcam: np.ndarray) -> dict:
    python = os.environ.get("XPLIQUE_PYTHON")
    if not python:
        return {"error": "not run: set XPLIQUE_PYTHON to a Python with xplique installed (xplique 2.0.2 pins tensorflow<=2.20)"}
    script = os.path.join(os.path.dirname(os.path.abspath(__file__)), "_xplique_peer.py")
    with tempfile.TemporaryDirectory() as folder:
        maps_path, weights_path = os.path.join(folder, "gradcam.npy"), os.path.join(folder, "model.weights.h5")
        model.save_weights(weights_path)
        result = subprocess.run([python, script, name, str(size), maps_path, weights_path], capture_output=True,
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
    return report


def _measure(quick: bool) -> dict:
    keras.utils.set_random_seed(0)
    report = {"machine": {"cpu_count": os.cpu_count(), "python": platform.python_version(), "tensorflow": tf.__version__,
                          "keras": keras.__version__}, "batch": 16, "models": {}}
    for name, model, size in _models(quick):
        images = np.random.default_rng(0).normal(size=(16, size, size, 1)).astype("float32")
        targets = np.ones(16, dtype=int)
        compiled = tf.function(lambda x: model(x, training=False))
        forward = _timed(lambda: compiled(images).numpy(), repeats=3) / 16
        entry = {"forward_ms_per_image": 1000 * forward, "ours": {}}
        for method, options, count_64, count_224 in OURS:
            count = count_64 if size <= 64 else count_224
            if count == 0:
                entry["ours"][method] = {"skipped": "too slow at this size on CPU (1024 channel forwards per image)"}
                continue
            explainer = make_explainer(method, model, batch_size=16, **options)
            subset = images[:count]
            seconds = _timed(lambda: explainer(subset, targets[:count]), repeats=1)
            entry["ours"][method] = {"ms_per_image": 1000 * seconds / count, "ratio_to_forward": seconds / count / forward}
        layer = "csam"
        peers, peer_maps = _peers_tf_keras_vis(model, images, layer, targets, forward)
        entry["tf_keras_vis"] = peers
        # Peers upsample differently; compare on the same upsampling of our feature-resolution map.
        feature_resolution = make_explainer("gradcam", model, upsample_to_input=False, normalize=False)(images, targets)
        if "Gradcam" in peer_maps:
            # tf-keras-vis: scipy linear-spline zoom, then per-map min-max.
            factor = (1, size / feature_resolution.shape[1], size / feature_resolution.shape[2])
            ours = zoom(feature_resolution, factor, order=1)
            minmax = lambda m: (m - m.min((1, 2), keepdims=True)) / np.maximum(np.ptp(m, (1, 2), keepdims=True), 1e-12)  # noqa: E731
            entry["gradcam_max_abs_difference_vs_tf_keras_vis"] = float(np.abs(minmax(ours) - minmax(peer_maps["Gradcam"])).max())
        entry["xplique"] = _peers_xplique(name, size, model, feature_resolution)
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

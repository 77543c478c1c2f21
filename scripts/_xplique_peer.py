"""Times xplique's explainers on the same model as scripts/benchmark_explain.py (run by it).

Runs under a separate Python whose TensorFlow xplique accepts (xplique 2.0.2 pins tensorflow<=2.20):
    XPLIQUE_PYTHON=/path/to/xplique-venv/bin/python python scripts/benchmark_explain.py
Prints one JSON line: method → ms/image and ratio to one forward pass; Grad-CAM and IG maps are saved
for the main script to compare with ours. Grad-CAM and IG are also timed on the same weights built under
Keras' mixed_bfloat16 policy with float32 logits (or their error recorded); their ratios are to the
float32 forward pass, like every other row.
"""

import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from xplique.attributions import GradCAM, GradCAMPP, IntegratedGradients, Lime, Occlusion  # noqa: E402

from tfxmed.config import ModelConfig, SmallCnnConfig  # noqa: E402
from tfxmed.models import build_model, logits_model  # noqa: E402


def _timed(function, count):
    function()
    started = time.perf_counter()
    function()
    return (time.perf_counter() - started) / count


def _build(name, size, weights, policy="float32"):
    small = ModelConfig(name="small_cnn", attention=True, small_cnn=SmallCnnConfig(width=16, blocks=[2, 2, 2]))
    config = small if name.startswith("small") else ModelConfig()
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(policy)
    try:
        model = build_model(config, (size, size, 1), 2, False)
    finally:
        keras.config.set_dtype_policy(previous)
    if weights:
        model.load_weights(weights)  # the very weights the main benchmark explains
    scores = logits_model(model)
    if policy != "float32":  # Keras' mixed-precision advice: float32 outputs (as our explainers cast them)
        cast = keras.layers.Activation("linear", dtype="float32")(scores.output)
        scores = keras.Model(scores.inputs, cast)
    return scores


def main():
    # argv: model name, image size, folder for the maps, weights file
    name, size = sys.argv[1], int(sys.argv[2])
    folder = sys.argv[3] if len(sys.argv) > 3 else None
    weights = sys.argv[4] if len(sys.argv) > 4 else None
    model = _build(name, size, weights)
    images = np.random.default_rng(0).normal(size=(16, size, size, 1)).astype("float32")
    targets = tf.one_hot(np.ones(16, dtype=int), 2)
    compiled = tf.function(lambda x: model(x, training=False))
    forward = _timed(lambda: compiled(images).numpy(), 16)
    small = size <= 64
    # Each explainer is built once and warmed up on the timed inputs (tracing is not counted).
    explainers = {
        "GradCAM": (lambda m: GradCAM(m, conv_layer="csam", batch_size=16), 16),
        "GradCAMPP": (lambda m: GradCAMPP(m, conv_layer="csam", batch_size=16), 16),
        "IntegratedGradients": (lambda m: IntegratedGradients(m, steps=32, batch_size=16), 4 if small else 2),
        "Lime": (lambda m: Lime(m, nb_samples=128, batch_size=16), 2 if small else 1),
        "Occlusion": (lambda m: Occlusion(m, patch_size=8, patch_stride=8, batch_size=16), 4 if small else 1),
    }
    results = {}
    for method, (make, count) in explainers.items():
        try:
            explainer = make(model)
            run = lambda explainer=explainer, count=count: np.asarray(  # noqa: E731
                explainer.explain(images[:count], targets[:count]))
            seconds = _timed(run, count)
            results[method] = {"ms_per_image": 1000 * seconds, "ratio_to_forward": seconds / forward}
            if method in ("GradCAM", "IntegratedGradients") and folder:
                np.save(os.path.join(folder, f"{method}.npy"), run())
        except Exception as error:  # noqa: BLE001 - record the peer's failure
            results[method] = {"error": f"{type(error).__name__}: {str(error)[:300]}"}
    # The same weights under Keras' mixed_bfloat16 policy: xplique at the precision of our bfloat16 rows.
    low = _build(name, size, weights, "mixed_bfloat16")
    low_compiled = tf.function(lambda x: low(x, training=False))
    results["forward_ms_per_image@mixed_bfloat16"] = 1000 * _timed(lambda: low_compiled(images).numpy(), 16)
    for method in ("GradCAM", "IntegratedGradients"):
        make, count = explainers[method]
        try:
            explainer = make(low)
            seconds = _timed(
                lambda explainer=explainer, count=count: np.asarray(explainer.explain(images[:count], targets[:count])),
                count)
            results[f"{method}@mixed_bfloat16"] = {"ms_per_image": 1000 * seconds,
                                                   "ratio_to_forward": seconds / forward}
        except Exception as error:  # noqa: BLE001
            results[f"{method}@mixed_bfloat16"] = {"error": f"{type(error).__name__}: {str(error)[:300]}"}
    results["forward_ms_per_image"] = 1000 * forward
    results["versions"] = {"tensorflow": tf.__version__, "keras": keras.__version__}
    print(json.dumps(results))


if __name__ == "__main__":
    main()

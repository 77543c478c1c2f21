"""SavedModel export with `serving_default` (probabilities) and `explain` (+ Grad-CAM) signatures.

Both signatures take float32 images [N, H, W, C] with values in [0, 1] at any H, W; they apply the
same eval preprocessing as training (resize, normalise with the dataset's μ/σ) inside the graph.
`explain` returns the Grad-CAM of the predicted class at the caller's input resolution.
"""

from __future__ import annotations

import os
import shutil

import keras
import tensorflow as tf

from tfxmed.data.pipeline import normalize, preprocess_for_eval
from tfxmed.explain.layers import GradCAMLayer
from tfxmed.models import default_explain_layer
from tfxmed.runs import load_run

__all__ = ["export_run", "export_saved_model"]


def export_saved_model(model: keras.Model, manifest: dict, image_size: int, path: str, layer: str = "") -> str:
    """Writes the SavedModel to `path` (replacing it atomically) and returns the path."""
    channels = int(model.inputs[0].shape[-1])
    gradcam = GradCAMLayer(model, layer_name=layer or default_explain_layer(model))
    signature = [tf.TensorSpec([None, None, None, channels], tf.float32, name="images")]

    def prepare(images):
        return normalize(preprocess_for_eval(images, image_size), manifest)

    def serve(images):
        return {"probabilities": model(prepare(images), training=False)}

    def explain(images):
        inputs = prepare(images)
        probabilities = model(inputs, training=False)
        predicted = tf.one_hot(tf.argmax(probabilities, axis=-1), tf.shape(probabilities)[-1])
        maps = gradcam(inputs, predicted)
        maps = tf.image.resize(maps[..., None], tf.shape(images)[1:3], method="bilinear")[..., 0]
        return {"probabilities": probabilities, "gradcam": maps}

    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.add_endpoint("serving_default", serve, input_signature=signature)
    archive.add_endpoint("explain", explain, input_signature=signature)
    temporary = f"{path}.tmp"
    shutil.rmtree(temporary, ignore_errors=True)
    archive.write_out(temporary, verbose=False)
    shutil.rmtree(path, ignore_errors=True)
    os.replace(temporary, path)
    return path


def export_run(run_dir: str, out: str | None = None) -> str:
    """Exports a run's best checkpoint to `out` (default RUN/saved_model); returns the path."""
    run = load_run(run_dir)
    return export_saved_model(run.model, run.manifest, run.config.data.image_size, out or run.paths.saved_model,
                              run.config.explain.layer)

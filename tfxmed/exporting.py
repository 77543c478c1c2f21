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
from tfxmed.errors import OutputExistsError
from tfxmed.runs import load_run
from tfxmed.storage import write_json_atomic

__all__ = ["export_run", "export_saved_model", "check_replaceable", "EXPORT_MARKER"]

EXPORT_MARKER = "tfxmed_export.json"  # written into every export: marks the folder as ours to replace


def export_saved_model(model: keras.Model, manifest: dict, image_size: int, path: str, layer: str = "") -> str:
    """Writes the SavedModel to `path` and returns the path.

    `path` must be new, empty, or an earlier tfxmed export (which is replaced whole, by rename);
    anything else is refused before any work (`OutputExistsError`).
    """
    check_replaceable(path)
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
    check_replaceable(path)  # again: the folder may have appeared while exporting
    parent, name = os.path.split(os.path.abspath(path))
    temporary = os.path.join(parent, f".{name}.tfxmed-export-tmp")
    shutil.rmtree(temporary, ignore_errors=True)  # a killed export's own leftover (tfxmed's name)
    archive.write_out(temporary, verbose=False)
    write_json_atomic({"written_by": "tfxmed", "signatures": ["serving_default", "explain"]},
                      os.path.join(temporary, EXPORT_MARKER))
    if os.path.exists(path):  # an earlier export of ours (checked above): swap, then drop the old one
        previous = os.path.join(parent, f".{name}.tfxmed-export-old")
        shutil.rmtree(previous, ignore_errors=True)
        os.replace(path, previous)
        os.replace(temporary, path)
        shutil.rmtree(previous)
    else:
        os.replace(temporary, path)
    return path


def check_replaceable(path: str) -> None:
    """Refuses an export path that exists and is neither empty nor an earlier tfxmed export."""
    if not os.path.exists(path):
        return
    if not os.path.isdir(path):
        raise OutputExistsError(f"--out '{path}' is a file; give a new folder for the SavedModel")
    if os.listdir(path) and not os.path.exists(os.path.join(path, EXPORT_MARKER)):
        raise OutputExistsError(
            f"--out '{path}' is a non-empty folder that tfxmed did not export; give a new or empty folder "
            "(tfxmed never deletes folders it did not create)"
        )
    if not os.listdir(path):
        os.rmdir(path)


def export_run(run_dir: str, out: str | None = None) -> str:
    """Exports a run's best checkpoint to `out` (default RUN/saved_model); returns the path."""
    run = load_run(run_dir)
    return export_saved_model(run.model, run.manifest, run.config.data.image_size, out or run.paths.saved_model,
                              run.config.explain.layer)

"""SavedModel export with `serving_default` (probabilities) and `explain` (+ the default explanation).

Both return the run's calibrated probabilities (`tfxmed.calibration`, fitted on validation).

Both signatures take float32 images [N, H, W, C] with values in [0, 1] at any H, W; they apply the
same eval preprocessing as training (resize, normalise with the dataset's μ/σ) inside the graph. A
volume run's take volumes [N, D, H, W, C] in the stored units (e.g. HU) at any D, H, W: windowed,
resampled and normalised in the graph, its explanation returned at the caller's D, H, W.
`explain` returns the run's default explanation (`tfxmed.default_explanation`) of the predicted
class at the caller's input resolution, under `explanation`. Inputs are checked inside the graph
(rank, channels, a non-empty batch, finite values): a bad request gets an InvalidArgument error that
says what was expected, and the serving process stays up.
"""

from __future__ import annotations

import os

import keras
import tensorflow as tf

from tfxmed import calibration as calibration_lib
from tfxmed.data.pipeline import normalize, preprocess_for_eval
from tfxmed.default_explanation import Choice, choose, explainer_for, load_choice
from tfxmed.errors import OutputExistsError
from tfxmed.evaluation import collect_split
from tfxmed.explain.layers import ExplanationLayer
from tfxmed.explain.ops import upsample
from tfxmed.models import default_explain_layer
from tfxmed.models.factory import logits_model
from tfxmed.runs import load_run
from tfxmed.storage import exists, is_dir, is_remote, list_dir, remove, rename, write_json_atomic
from tfxmed.training.xla import jit_compile_enabled

__all__ = ["export_run", "export_saved_model", "check_replaceable", "checked_images", "checked_volumes",
           "EXPORT_MARKER"]

EXPORT_MARKER = "tfxmed_export.json"  # written into every export: marks the folder as ours to replace


def _checked_batch(inputs: tf.Tensor, channels: int, noun: str, axes: str, units: str) -> tf.Tensor:
    """`inputs` as [N, *axes, channels] of finite values, or an InvalidArgument error saying what was expected
    and received. One assertion over every condition (separate assertions may run, and report, in any order)."""
    rank = len(axes) + 2
    shape = tf.shape(inputs)
    finite = tf.reduce_all(tf.math.is_finite(tf.reshape(inputs, [-1])))  # flat: any rank reduces
    padded = tf.concat([shape, tf.ones([rank], tf.int32)], 0)  # any rank: indexable below
    valid = tf.reduce_all(tf.stack([
        tf.equal(tf.rank(inputs), rank), tf.equal(padded[rank - 1], channels), padded[0] > 0,
        tf.reduce_min(padded[1:rank - 1]) >= 2, finite,
    ]))
    dimensions = ", ".join(f"{axis} >= 2" for axis in axes)
    check = tf.debugging.Assert(valid, [
        f"{noun} must be a batch [N >= 1, {dimensions}, {channels}] of finite float32 values {units};",
        "received shape", shape, "; all values finite:", finite,
    ], summarize=8)
    # No other op may fail first on a bad request (that error would be the one reported): a bad tensor is
    # swapped for a harmless one while the assertion above fails the request.
    with tf.control_dependencies([check]):
        safe = tf.cond(valid, lambda: tf.reshape(inputs, padded[:rank]),
                       lambda: tf.zeros([1, *[2] * len(axes), channels]))
    safe.set_shape([None] * (rank - 1) + [channels])
    return safe


def checked_images(images: tf.Tensor, channels: int) -> tf.Tensor:
    """`images` as [N, H, W, channels] of values in [0, 1], or an InvalidArgument error saying what was expected."""
    return _checked_batch(images, channels, "images", "HW", "in [0, 1]")


def checked_volumes(volumes: tf.Tensor, channels: int) -> tf.Tensor:
    """`volumes` as [N, D, H, W, channels] in stored units, or an InvalidArgument error saying what was expected."""
    return _checked_batch(volumes, channels, "volumes", "DHW", "in the stored units (e.g. HU)")


def _volume_preparation(manifest: dict, shape, channels: int):
    """Serving-side preprocessing of volumes: check, window (stored units → [0, 1]), resample to the model's
    (D, H, W), normalise; as `tfxmed.data.volume_pipeline` does for evaluation."""
    from tfxmed.data.volume_features import window_unit
    from tfxmed.data.volume_pipeline import resample

    def prepare(volumes):
        unit = window_unit(checked_volumes(volumes, channels), manifest["window"])
        resampled = tf.map_fn(lambda volume: resample(volume, shape), unit,
                              fn_output_signature=tf.TensorSpec([*shape, channels], tf.float32))
        return normalize(resampled, manifest)

    return prepare


def export_saved_model(model: keras.Model, manifest: dict, image_size: int, path: str,
                       choice: Choice | None = None, calibration: dict | None = None, jit_compile: bool = False,
                       volume_spacing=()) -> str:
    """Writes the SavedModel to `path` and returns the path.

    `choice` is the default explanation served by `explain` (default: Grad-CAM at the model's
    declared layer). `calibration` (`tfxmed.calibration`; default: none) is applied to the
    probabilities both signatures return. `path` must be new, empty, or an earlier tfxmed export
    (which is replaced whole, by rename); anything else is refused before any work (`OutputExistsError`).
    `jit_compile` compiles each signature's model compute (classifier, calibration, explanation) with XLA
    (`runtime.jit_compile`); the request check (XLA drops assertions) and the resizing to and from the
    caller's size (area resizing has no XLA kernel) stay outside.
    """
    check_replaceable(path)
    choice = choice or Choice("gradcam", default_explain_layer(model))
    calibration = calibration or calibration_lib.identity_for(model)
    scores = logits_model(model) if calibration["method"] != "none" else None
    channels = int(model.inputs[0].shape[-1])
    served = explainer_for(model, choice, serving=True)
    explanation = ExplanationLayer(model, choice.method, _served_options(choice, served))
    signature = [tf.TensorSpec(None, tf.float32, name="images")]  # any rank: checked in the graph

    volumes = manifest.get("kind") == "volume"

    def prepare(images):
        return normalize(preprocess_for_eval(checked_images(images, channels), image_size), manifest)

    if volumes:  # [N, D, H, W, C] in stored units (HU), resampled to the model's grid
        prepare = _volume_preparation(manifest, tuple(model.inputs[0].shape[1:4]), channels)
        if volume_spacing:
            raise ValueError(f"data.volume_spacing={list(volume_spacing)}: serving resamples volumes to the model's "
                             "grid and takes no spacing with a request, so it would not see what evaluation saw; "
                             "export a run trained without data.volume_spacing")

    def calibrated(inputs):
        if scores is None:
            return model(inputs, training=False)
        return calibration_lib.apply_tf(calibration, scores(inputs, training=False), manifest["multi_label"])

    def explained(inputs):
        probabilities = calibrated(inputs)
        predicted = tf.one_hot(tf.argmax(probabilities, axis=-1), tf.shape(probabilities)[-1])
        return probabilities, explanation(inputs, predicted)

    if jit_compile:  # the model compute of each signature is one XLA computation, as on a TPU
        calibrated, explained = (tf.function(f, jit_compile=True) for f in (calibrated, explained))

    def serve(images):
        return {"probabilities": calibrated(prepare(images))}

    def explain(images):
        probabilities, maps = explained(prepare(images))
        if volumes:  # padded: a request of the wrong rank fails in `prepare`'s check, not here
            size = tf.concat([tf.shape(images), tf.ones([5], tf.int32)], 0)
            maps = upsample(maps, [size[1], size[2], size[3]])
        else:
            maps = tf.image.resize(maps[..., None], tf.shape(images)[1:3], method="bilinear")[..., 0]
        return {"probabilities": probabilities, "explanation": maps}

    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.add_endpoint("serving_default", serve, input_signature=signature)
    archive.add_endpoint("explain", explain, input_signature=signature)
    check_replaceable(path)  # again: the folder may have appeared while exporting
    parent, name = os.path.split(path.rstrip("/") if is_remote(path) else os.path.abspath(path))
    temporary = os.path.join(parent, f".{name}.tfxmed-export-tmp")
    remove(temporary)  # a killed export's own leftover (tfxmed's name)
    archive.write_out(temporary, verbose=False)
    marker = {"written_by": "tfxmed", "signatures": ["serving_default", "explain"],
              "explanation": {"method": choice.method, "layer": choice.layer, **choice.options,
                              **({"served_weights": served.weights} if choice.method == "fusion" else {})},
              "calibration": calibration, "jit_compile": bool(jit_compile)}
    if is_remote(path):
        # gs:// and ram:// move folders file by file (tfxmed.storage.rename), so no swap is atomic: the
        # earlier export goes first, the new one moves in, and the marker comes last (a killed export
        # leaves an unmarked folder, which is refused rather than served as complete).
        remove(path)
        rename(temporary, path)
        write_json_atomic(marker, os.path.join(path, EXPORT_MARKER))
        return path
    write_json_atomic(marker, os.path.join(temporary, EXPORT_MARKER))
    if exists(path):  # an earlier export of ours (checked above): swap, then drop the old one
        previous = os.path.join(parent, f".{name}.tfxmed-export-old")
        remove(previous)
        rename(path, previous)
        rename(temporary, path)
        remove(previous)
    else:
        rename(temporary, path)
    return path


def _served_options(choice: Choice, served) -> dict:
    options = {**choice.options, **({"layer": choice.layer} if choice.layer else {})}
    if choice.method == "fusion":
        options = {"weights": served.weights, **choice.options,
                   **({"default_layer": choice.layer} if choice.layer else {})}
    return options


def check_replaceable(path: str) -> None:
    """Refuses an export path that exists and is neither empty nor an earlier tfxmed export."""
    if not exists(path):
        return
    if not is_dir(path):
        raise OutputExistsError(f"--out '{path}' is a file; give a new folder for the SavedModel")
    if list_dir(path) and not exists(os.path.join(path, EXPORT_MARKER)):
        raise OutputExistsError(
            f"--out '{path}' is a non-empty folder that tfxmed did not export; give a new or empty folder "
            "(tfxmed never deletes folders it did not create)"
        )
    if not list_dir(path):
        remove(path)


def export_run(run_dir: str, out: str | None = None) -> str:
    """Exports a run's best checkpoint to `out` (default RUN/saved_model) with the run's default
    explanation (as `evaluate` chose it; resolved now on the validation split if not evaluated yet)."""
    run = load_run(run_dir)
    has_val = "val" in run.manifest["splits"]
    read_val = lambda: collect_split(run.data_dir, run.manifest, run.config, "val") if has_val else None  # noqa: E731
    calibration = calibration_lib.run_calibration(run, read_val)
    choice = load_choice(run.paths.eval_dir)
    if choice is None:
        choice = choose(run.model, run.config, read_val() if run.config.explain.method == "auto" else None)
    jit_compile = jit_compile_enabled(run.config.runtime.jit_compile, run.config.runtime.strategy)
    return export_saved_model(run.model, run.manifest, run.config.data.image_size, out or run.paths.saved_model,
                              choice, calibration, jit_compile, run.config.data.volume_spacing)

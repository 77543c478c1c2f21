"""The explanation-consistency loss: d(H_GradCAM, H_IG) between two maps of the same images.

Both maps are brought to a common resolution and a common scale before they are compared:

1. Resolution: the Grad-CAM grid (the explained layer's h × w). The pixel-level IG map is averaged over
   each grid cell (average pooling when the sizes divide, else bilinear resizing). Both ops have
   gradients, unlike `tf.image.resize(..., "area")` (ResizeArea has none).
2. Scale: each map is min-max normalised to [0, 1] per image, so the distance compares *where* the
   evidence is, not how large the two methods' raw values happen to be.
3. Distance, averaged over the spatial grid and then over images: `l1` (mean |a − b|, the design's
   ‖·‖₁), `l2` (root mean square) or `cosine` (1 − cos(a, b)).
"""

from __future__ import annotations

import keras
import tensorflow as tf

from tfxmed.explain.ops import minmax_maps, upsample

__all__ = ["ElementwiseBinaryCrossentropy", "DISTANCES", "to_grid", "map_distance", "explanation_consistency"]

DISTANCES = ("l1", "l2", "cosine")


def to_grid(maps: tf.Tensor, *size: int) -> tf.Tensor:
    """Averages maps [n, H, W] (or volumes [n, D, H, W]) onto a grid of `size` (h, w) or (d, h, w), differentiably:
    an average pool when the sizes divide, else (bi/tri)linear resampling."""
    source = tuple(maps.shape[1:])
    if len(source) != len(size):
        raise ValueError(f"to_grid: maps of spatial shape {source} onto a grid of {len(size)} dimensions {size}")
    if source == tuple(size):
        return maps
    if all(a % b == 0 for a, b in zip(source, size)):
        pool = tuple(a // b for a, b in zip(source, size))
        pooling = tf.nn.avg_pool2d if len(size) == 2 else tf.nn.avg_pool3d
        return pooling(maps[..., None], pool, pool, "VALID")[..., 0]
    return upsample(maps, size)


def map_distance(first: tf.Tensor, second: tf.Tensor, distance: str = "l1") -> tf.Tensor:
    """Per-image distance [n] between maps [n, *spatial] of the same shape (2-D or 3-D)."""
    axes = list(range(1, len(first.shape)))
    if distance == "l1":
        return tf.reduce_mean(tf.abs(first - second), axis=axes)
    if distance == "l2":
        return tf.sqrt(tf.reduce_mean(tf.square(first - second), axis=axes) + 1e-12)
    if distance == "cosine":
        first, second = tf.reshape(first, [tf.shape(first)[0], -1]), tf.reshape(second, [tf.shape(second)[0], -1])
        return 1.0 - tf.reduce_sum(tf.math.l2_normalize(first, 1) * tf.math.l2_normalize(second, 1), axis=1)
    raise ValueError(f"distance must be one of {', '.join(DISTANCES)}; got '{distance}'")


def explanation_consistency(gradcam: tf.Tensor, integrated_gradients: tf.Tensor, distance: str = "l1") -> tf.Tensor:
    """Mean over images of d(norm(Grad-CAM [n, h, w]), norm(grid(IG [n, H, W]))) (volumes: [n, d, h, w])."""
    gradcam = tf.cast(gradcam, tf.float32)
    integrated_gradients = to_grid(tf.cast(integrated_gradients, tf.float32), *gradcam.shape[1:])
    return tf.reduce_mean(
        map_distance(minmax_maps(gradcam), minmax_maps(integrated_gradients), distance)
    )


@keras.saving.register_keras_serializable(package="tfxmed")
class ElementwiseBinaryCrossentropy(keras.losses.Loss):
    """Multi-label BCE kept per label ([B, K], no mean over labels), so a [B, K] sample weight masks labels.

    The pipeline passes each record's `label_weight` (e.g. 0 for CheXpert U-Ignore uncertain labels) as
    the sample weight; Keras then averages the weighted [B, K] losses over all B·K entries.
    """

    def __init__(self, label_smoothing: float = 0.0, name: str = "elementwise_binary_crossentropy", **kwargs):
        super().__init__(name=name, **kwargs)
        self.label_smoothing = label_smoothing

    def call(self, y_true, y_pred):
        y_true = keras.ops.cast(y_true, y_pred.dtype)
        y_true = y_true * (1.0 - self.label_smoothing) + 0.5 * self.label_smoothing
        y_pred = keras.ops.clip(y_pred, keras.config.epsilon(), 1.0 - keras.config.epsilon())
        return -(y_true * keras.ops.log(y_pred) + (1.0 - y_true) * keras.ops.log(1.0 - y_pred))

    def get_config(self):
        return {**super().get_config(), "label_smoothing": self.label_smoothing}


@keras.saving.register_keras_serializable(package="tfxmed")
class GroupedCrossentropy(keras.losses.Loss):
    """Cross-entropy within each group of outputs (a `GroupSoftmax` head), kept per output ([B, K]) like
    `ElementwiseBinaryCrossentropy`, so a [B, K] sample weight still masks entries.

    Entry k holds −y'_k · log p_k · K / G, with y' smoothed within its group (y(1 − ε) + ε / |group|): the
    mean over the K entries is the mean over the G groups of each group's categorical cross-entropy.
    """

    def __init__(self, groups, label_smoothing: float = 0.0, name: str = "grouped_crossentropy", **kwargs):
        super().__init__(name=name, **kwargs)
        self.groups = [[int(index) for index in group] for group in groups]
        self.label_smoothing = label_smoothing
        sizes = {index: len(group) for group in self.groups for index in group}
        self._uniform = [1.0 / sizes[k] for k in range(len(sizes))]
        self._scale = len(sizes) / len(self.groups)

    def call(self, y_true, y_pred):
        y_true = keras.ops.cast(y_true, y_pred.dtype)
        uniform = keras.ops.convert_to_tensor(self._uniform, y_pred.dtype)
        y_true = y_true * (1.0 - self.label_smoothing) + uniform * self.label_smoothing
        y_pred = keras.ops.clip(y_pred, keras.config.epsilon(), 1.0)
        return -y_true * keras.ops.log(y_pred) * self._scale

    def get_config(self):
        return {**super().get_config(), "groups": self.groups, "label_smoothing": self.label_smoothing}

"""TensorFlow ops shared by the explainers and the explanation-consistency loss.

Every op works inside a `tf.function` (and so inside a train step): no NumPy, no Python callbacks.
Maps are [N, *spatial]; feature maps and images are [N, *spatial, C]. The NumPy counterparts used on
the host (metrics, overlays, fusion) live in `tfxmed.metrics.maps`.
"""

from __future__ import annotations

from collections.abc import Sequence

import tensorflow as tf

__all__ = ["spatial_axes", "upsample", "normalize_maps", "minmax_maps", "gaussian_blur", "chunked_map"]


def spatial_axes(features: tf.Tensor) -> list[int]:
    """The spatial axes of [n, *spatial, C] (any number of spatial dims)."""
    return list(range(1, len(features.shape) - 1))


def upsample(maps: tf.Tensor, size: Sequence[int]) -> tf.Tensor:
    """Bilinear upsampling of maps [N, *spatial] to `size` (differentiable; 2-D and 3-D)."""
    if len(size) == 2:
        return tf.image.resize(maps[..., None], size, method="bilinear")[..., 0]
    if len(size) == 3:
        depth, height, width = size
        shape = tf.shape(maps)
        planes = tf.reshape(maps, [-1, shape[2], shape[3], 1])
        planes = tf.image.resize(planes, [height, width], method="bilinear")
        planes = tf.reshape(planes, [shape[0], shape[1], height * width, 1])
        planes = tf.image.resize(planes, [depth, height * width], method="bilinear")
        return tf.reshape(planes, [shape[0], depth, height, width])
    raise ValueError(f"upsample supports 2-D and 3-D maps, got spatial size {list(size)}")


def normalize_maps(maps: tf.Tensor) -> tf.Tensor:
    """Scales each map to [0, 1] by its maximum (all-zero maps stay zero); for non-negative maps."""
    axes = tuple(range(1, len(maps.shape)))
    peak = tf.reduce_max(maps, axis=axes, keepdims=True)
    return tf.math.divide_no_nan(maps, peak)


def minmax_maps(maps: tf.Tensor) -> tf.Tensor:
    """Min-max scales each map [n, ...] to [0, 1] over all its non-batch axes (a constant map becomes 0).

    The in-graph twin of `tfxmed.metrics.maps.minmax_per_map` (same result on finite maps).
    """
    axes = list(range(1, len(maps.shape)))
    low = tf.reduce_min(maps, axis=axes, keepdims=True)
    high = tf.reduce_max(maps, axis=axes, keepdims=True)
    return tf.math.divide_no_nan(maps - low, high - low)


def chunked_map(function, items: tf.Tensor, chunk: int) -> tf.Tensor:
    """`function` over `items` [n, ...] in chunks of `chunk` along the first axis, outputs concatenated [n, ...].

    Shapes stay static, as XLA (a TPU) needs: `n` must be known, `items` are zero-padded to a whole number
    of chunks and the padding's outputs dropped (at most `chunk - 1` wasted rows). `function` returns a
    float32 tensor whose first axis is its input's.
    """
    count = items.shape[0]
    if count <= chunk:
        return function(items)
    chunks = -(-count // chunk)
    padded = tf.pad(items, [[0, chunks * chunk - count]] + [[0, 0]] * (len(items.shape) - 1))
    outputs = tf.map_fn(function, tf.reshape(padded, [chunks, chunk, *items.shape[1:]]), fn_output_signature=tf.float32)
    return tf.reshape(outputs, [chunks * chunk, *outputs.shape[2:]])[:count]


def gaussian_blur(images: tf.Tensor, sigma: float) -> tf.Tensor:
    """Separable Gaussian blur of [n, H, W, C] images (reflect padding)."""
    radius = max(1, int(3 * sigma))
    offsets = tf.range(-radius, radius + 1, dtype=tf.float32)
    kernel = tf.exp(-(offsets**2) / (2.0 * sigma**2))
    kernel /= tf.reduce_sum(kernel)
    channels = images.shape[-1]
    padded = tf.pad(images, [[0, 0], [radius, radius], [radius, radius], [0, 0]], mode="REFLECT")
    rows = tf.tile(tf.reshape(kernel, [-1, 1, 1, 1]), [1, 1, channels, 1])
    columns = tf.tile(tf.reshape(kernel, [1, -1, 1, 1]), [1, 1, channels, 1])
    blurred = tf.nn.depthwise_conv2d(padded, rows, [1, 1, 1, 1], "VALID")
    return tf.nn.depthwise_conv2d(blurred, columns, [1, 1, 1, 1], "VALID")

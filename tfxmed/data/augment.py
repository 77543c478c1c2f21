"""Augmentation in pure TF ops, applied to image and mask together (so masks stay aligned).

Rotation ±15°, flips, brightness/contrast ±0.2 and a random crop of up to 10% of each side, the
defaults of the design the project started from. Everything is graph-friendly: no Python or NumPy inside, so it runs in
tf.data on any host and can sit in front of TPU training.

Intensities are not clipped back to [0, 1] after brightness/contrast: clipping saturates the bright
lesions the classifier must find (measured on the synthetic benchmark, with photometric augmentation only, a
small CNN's val AUC was 0.94 without the clip and 0.76 with it; see docs/results.md).
"""

from __future__ import annotations

import math

import tensorflow as tf

__all__ = ["augment", "rotation_transform"]


def rotation_transform(angles: tf.Tensor, height: int, width: int) -> tf.Tensor:
    """Projective transforms [N, 8] rotating images by `angles` (radians) about their centres."""
    cos, sin = tf.cos(angles), tf.sin(angles)
    center_x, center_y = (width - 1) / 2.0, (height - 1) / 2.0
    # Maps output pixel (x, y) to input pixel, as ImageProjectiveTransformV3 expects.
    offset_x = center_x - (cos * center_x - sin * center_y)
    offset_y = center_y - (sin * center_x + cos * center_y)
    zeros = tf.zeros_like(angles)
    return tf.stack([cos, -sin, offset_x, sin, cos, offset_y, zeros, zeros], axis=1)


def _geometry(count: tf.Tensor, height: int, width: int, rotation_degrees: float, flip_left_right: bool,
              flip_up_down: bool, crop_fraction: float) -> tf.Tensor:
    """Per-image transforms [N, 8] doing flip → crop-and-resize → rotation in one resampling.

    Each step maps an output pixel to the pixel it reads (as ImageProjectiveTransformV3 expects), so the
    composed map is flip ∘ crop ∘ rotation, applied right to left to the output grid.
    """
    ones, zeros = tf.ones([count]), tf.zeros([count])

    def affine(a, b, c, d, e, f):  # [[a, b, c], [d, e, f], [0, 0, 1]] per image
        return tf.stack([tf.stack([a, b, c], -1), tf.stack([d, e, f], -1), tf.stack([zeros, zeros, ones], -1)], 1)

    limit = rotation_degrees * math.pi / 180.0
    rotation = tf.reshape(rotation_transform(tf.random.uniform([count], -limit, limit), height, width)[:, :6],
                          [-1, 2, 3])
    matrix = tf.concat([rotation, affine(zeros, zeros, zeros, zeros, zeros, zeros)[:, 2:]], axis=1)
    if crop_fraction > 0:  # keep a fraction of each side, at a random offset, stretched back to full size
        keep = 1.0 - tf.random.uniform([count], 0.0, crop_fraction)
        top, left = tf.random.uniform([count]) * (1.0 - keep), tf.random.uniform([count]) * (1.0 - keep)
        matrix = affine(keep, zeros, left * (width - 1), zeros, keep, top * (height - 1)) @ matrix
    flips = [(flip_left_right, width, 0), (flip_up_down, height, 1)]
    for enabled, extent, axis in flips:
        if enabled:
            sign = tf.where(tf.random.uniform([count]) < 0.5, -ones, ones)
            shift = (1.0 - sign) / 2.0 * (extent - 1)
            matrix = (affine(sign, zeros, shift, zeros, ones, zeros) if axis == 0
                      else affine(ones, zeros, zeros, zeros, sign, shift)) @ matrix
    return tf.concat([tf.reshape(matrix[:, :2], [-1, 6]), tf.zeros([count, 2])], axis=1)


def augment(
    image: tf.Tensor,
    mask: tf.Tensor | None,
    rotation_degrees: float = 15.0,
    flip_left_right: bool = True,
    flip_up_down: bool = False,
    brightness: float = 0.2,
    contrast: float = 0.2,
    crop_fraction: float = 0.1,
) -> tuple[tf.Tensor, tf.Tensor | None]:
    """Augments a float image [H, W, C] in [0, 1] and its mask [H, W, 1] with shared geometry, or a batch
    [N, H, W, C] with its masks [N, H, W, 1], each image with its own random draw; `mask` may be None.

    A batch runs each op once for all its images, and the geometry (flip, crop, rotation) is one
    resampling: per-image maps and chained resamplings cost more than the work on small images
    (docs/benchmarks.md).
    """
    if image.shape.rank == 3:
        image, mask = augment(image[None], None if mask is None else mask[None], rotation_degrees, flip_left_right,
                              flip_up_down, brightness, contrast, crop_fraction)
        return image[0], None if mask is None else mask[0]
    height, width = image.shape[1], image.shape[2]
    count = tf.shape(image)[0]
    if rotation_degrees > 0 or crop_fraction > 0 or flip_left_right or flip_up_down:
        transforms = _geometry(count, height, width, rotation_degrees, flip_left_right, flip_up_down, crop_fraction)

        def resample(values: tf.Tensor) -> tf.Tensor:
            return tf.raw_ops.ImageProjectiveTransformV3(
                images=values, transforms=transforms, output_shape=[height, width], fill_value=0.0,
                interpolation="BILINEAR", fill_mode="NEAREST")

        image = resample(image)
        mask = None if mask is None else resample(tf.cast(mask, image.dtype))
    if brightness > 0 or contrast > 0:
        # (x + b − mean(x + b)) · f + mean(x + b) = x · f + mean(x) · (1 − f) + b: one multiply-add.
        shift = tf.random.uniform([count, 1, 1, 1], -brightness, brightness) if brightness > 0 else 0.0
        factor = tf.random.uniform([count, 1, 1, 1], 1.0 - contrast, 1.0 + contrast) if contrast > 0 else 1.0
        mean = tf.reduce_mean(image, axis=[1, 2], keepdims=True) if contrast > 0 else 0.0
        image = image * factor + (mean * (1.0 - factor) + shift)
    image.set_shape([None, height, width, image.shape[-1]])
    if mask is not None:
        mask.set_shape([None, height, width, 1])
    return image, mask

"""Occlusion (Zeiler & Fergus, ECCV 2014, arXiv:1311.2901): the score drop when a patch is hidden.

Each pixel's value is the mean drop y^c(x) − y^c(x with a patch over it replaced by `fill`) over the
patches that cover it. All occluded copies go through the model in batches of at most `batch_size`.
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from tfxmed.explain.base import Explainer
from tfxmed.explain.ops import chunked_map

__all__ = ["Occlusion", "patch_masks"]


def patch_masks(height: int, width: int, patch: int, stride: int) -> np.ndarray:
    """Binary masks [P, H, W] (1 = occluded) of square patches on a stride grid covering the image."""
    tops = list(range(0, max(height - patch, 0) + 1, stride))
    lefts = list(range(0, max(width - patch, 0) + 1, stride))
    if tops[-1] + patch < height:
        tops.append(height - patch)
    if lefts[-1] + patch < width:
        lefts.append(width - patch)
    masks = np.zeros((len(tops) * len(lefts), height, width), np.float32)
    for index, (top, left) in enumerate((t, left_edge) for t in tops for left_edge in lefts):
        masks[index, top : top + patch, left : left + patch] = 1.0
    return masks


class Occlusion(Explainer):
    """Sliding-patch occlusion sensitivity (2-D images).

    Args:
        patch: patch side in pixels.  stride: step between patches.  fill: value of hidden pixels
        (0 is the training mean after normalisation).  precision: see `Explainer`.
    """

    def __init__(self, model: keras.Model, patch: int = 8, stride: int = 4, fill: float = 0.0, batch_size: int = 64,
                 precision: str = "float32"):
        self.patch, self.stride, self.fill = patch, stride, fill
        super().__init__(model, batch_size, precision)
        height, width = self.input_shape[:2]
        masks = patch_masks(height, width, patch, stride)
        self.masks = tf.constant(masks)
        self.coverage = tf.constant(np.maximum(masks.sum(0), 1.0))

    def explain_batch(self, images, target_weights):
        def one_image(inputs):
            image, target = inputs
            base = tf.reduce_sum(self.scores(image[None], training=False)[0] * target)

            def drops(masks):
                masks = masks[..., None]
                occluded = image[None] * (1.0 - masks) + self.fill * masks
                return base - tf.reduce_sum(self.scores(occluded, training=False) * target, axis=-1)

            return tf.tensordot(chunked_map(drops, self.masks, self.batch_size), self.masks, axes=1) / self.coverage

        return tf.map_fn(one_image, (images, target_weights), fn_output_signature=tf.float32)

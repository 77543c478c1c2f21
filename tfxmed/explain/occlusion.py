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

__all__ = ["Occlusion", "patch_masks", "MASK_MEGABYTES"]

MASK_MEGABYTES = 1024  # the patch masks an occlusion explainer may hold


def _starts(size: int, patch: int, stride: int) -> list[int]:
    starts = list(range(0, max(size - patch, 0) + 1, stride))
    if starts[-1] + patch < size:
        starts.append(size - patch)
    return starts


def patch_masks(*spatial_and_patch) -> np.ndarray:
    """Binary masks [P, *spatial] (1 = occluded) of square (cubic) patches on a stride grid covering the input:
    `patch_masks(height, width, patch, stride)`, or `patch_masks(depth, height, width, patch, stride)`."""
    *shape, patch, stride = spatial_and_patch
    grids = [_starts(size, patch, stride) for size in shape]
    corners = np.stack(np.meshgrid(*grids, indexing="ij"), -1).reshape(-1, len(shape))
    masks = np.zeros((len(corners), *shape), np.float32)
    for index, corner in enumerate(corners):
        masks[(index, *(slice(c, c + patch) for c in corner))] = 1.0
    return masks


class Occlusion(Explainer):
    """Sliding-patch occlusion sensitivity (2-D images, or volumes with cubic patches).

    Args:
        patch: patch side in pixels (voxels).  stride: step between patches.  fill: value of hidden pixels
        (0 is the training mean after normalisation).  precision: see `Explainer`.
    The patch masks are held in memory: P × the input's size in float32 (64³ volumes, patch = stride = 16:
    64 masks, 64 MiB).
    """

    def __init__(self, model: keras.Model, patch: int = 8, stride: int = 4, fill: float = 0.0, batch_size: int = 64,
                 precision: str = "float32"):
        self.patch, self.stride, self.fill = patch, stride, fill
        super().__init__(model, batch_size, precision)
        counts = [len(_starts(size, patch, stride)) for size in self.input_shape[:-1]]
        megabytes = int(np.prod(counts)) * int(np.prod(self.input_shape[:-1])) * 4 / 2**20
        if megabytes > MASK_MEGABYTES:
            raise ValueError(f"occlusion with patch={patch}, stride={stride} on {self.input_shape[:-1]} inputs holds "
                             f"{int(np.prod(counts))} masks ({megabytes:.0f} MiB, over {MASK_MEGABYTES}); use larger "
                             "patches or strides (e.g. patch=stride=16 on 64³ volumes)")
        masks = patch_masks(*self.input_shape[:-1], patch, stride)
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

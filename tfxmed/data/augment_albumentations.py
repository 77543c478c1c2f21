"""The same augmentation list through albumentations (host-side NumPy/OpenCV), for `data.augment_backend`.

Rotation ±`rotation_degrees` (edge pixels replicated, as the TF path does), horizontal / vertical
flips, a random crop keeping 1 − U(0, `crop_fraction`) of each side resized back, then brightness
(additive) and contrast (about the image mean) without clipping, as in `tfxmed.data.augment`. Geometry
is applied to the mask with the image. It runs in tf.data through `tf.numpy_function`, i.e. Python on
the input host: fine for CPU/GPU training, refused for TPU (`check_backend`), whose input pipelines
must be graph-only.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

__all__ = ["AUGMENT_BACKENDS", "check_backend", "build_transform", "albumentations_augment"]

AUGMENT_BACKENDS = ("tf", "albumentations")


def check_backend(backend: str, strategy: str) -> None:
    """Raises a clear error for an unknown backend or for albumentations under a TPU strategy."""
    if backend not in AUGMENT_BACKENDS:
        raise ValueError(f"data.augment_backend must be one of {', '.join(AUGMENT_BACKENDS)}; got '{backend}'")
    if backend == "albumentations" and strategy == "tpu":
        raise ValueError("data.augment_backend=albumentations runs Python on the input host (tf.numpy_function), "
                         "which TPU input pipelines cannot run; use data.augment_backend=tf with --strategy=tpu")


def build_transform(rotation_degrees: float, flip_left_right: bool, flip_up_down: bool, brightness: float,
                    contrast: float, crop_fraction: float, size: int, seed: int | None = None):
    """An albumentations `Compose` (image + mask) matching the pure-TF augmentation's settings."""
    import albumentations as A
    import cv2

    steps = [
        A.HorizontalFlip(p=0.5 if flip_left_right else 0.0),
        A.VerticalFlip(p=0.5 if flip_up_down else 0.0),
    ]
    if crop_fraction > 0:
        keep = (1.0 - crop_fraction) ** 2  # area kept when each side keeps 1 − crop_fraction
        steps.append(A.RandomResizedCrop(size=(size, size), scale=(keep, 1.0), ratio=(1.0, 1.0), p=1.0))
    if rotation_degrees > 0:
        steps.append(A.Rotate(limit=rotation_degrees, border_mode=cv2.BORDER_REPLICATE, p=1.0))
    steps.append(_BrightnessContrast(brightness, contrast))
    return A.Compose(steps, seed=seed)


def _BrightnessContrast(brightness: float, contrast: float):
    """Unclipped brightness/contrast (albumentations' own clips to [0, 1], which saturates lesions)."""
    import albumentations as A

    class BrightnessContrast(A.ImageOnlyTransform):
        def __init__(self):
            super().__init__(p=1.0)

        def get_params_dependent_on_data(self, params, data):
            return {"shift": self.py_random.uniform(-brightness, brightness) if brightness > 0 else 0.0,
                    "factor": self.py_random.uniform(1 - contrast, 1 + contrast) if contrast > 0 else 1.0}

        def apply(self, img, shift=0.0, factor=1.0, **params):
            shifted = img + shift
            mean = shifted.mean(axis=(0, 1), keepdims=True)
            return ((shifted - mean) * factor + mean).astype(np.float32)

    return BrightnessContrast()


def albumentations_augment(image: tf.Tensor, mask: tf.Tensor, transform) -> tuple[tf.Tensor, tf.Tensor]:
    """Applies `transform` to one float image [H, W, C] in [0, 1] and its mask [H, W, 1] in tf.data."""

    def apply(image_array: np.ndarray, mask_array: np.ndarray):
        out = transform(image=image_array, mask=mask_array)
        image_out = out["image"].reshape(image_array.shape).astype(np.float32)
        return image_out, out["mask"].reshape(mask_array.shape).astype(np.float32)

    augmented, augmented_mask = tf.numpy_function(apply, [image, tf.cast(mask, tf.float32)], [tf.float32, tf.float32])
    augmented.set_shape(image.shape)
    augmented_mask.set_shape(mask.shape)
    return augmented, augmented_mask

"""EigenCAM (Muhammad & Yeasin, IJCNN 2020, arXiv:2008.00299) and EigenGradCAM.

The map is the projection of the feature map [positions × channels] on its first principal direction
(no centring, as in the paper and pytorch-grad-cam); EigenGradCAM projects g ⊙ A instead, which makes
it class-discriminative. The SVD sign is fixed so that the map's largest-magnitude value is positive.
"""

from __future__ import annotations

import tensorflow as tf

from tfxmed.explain.cam import CamExplainer

__all__ = ["EigenCam", "EigenGradCam", "first_principal_projection"]


def first_principal_projection(features: tf.Tensor) -> tf.Tensor:
    """[n, *spatial, C] → [n, *spatial]: projection on the first right-singular vector, sign-fixed."""
    shape = tf.shape(features)
    flat = tf.reshape(features, [shape[0], -1, shape[-1]])
    _, _, vectors = tf.linalg.svd(flat)
    projection = tf.einsum("npc,nc->np", flat, vectors[:, :, 0])
    peak = tf.gather(projection, tf.argmax(tf.abs(projection), axis=1), batch_dims=1)
    projection = projection * tf.where(peak < 0, -1.0, 1.0)[:, None]
    return tf.reshape(projection, shape[:-1])


class EigenCam(CamExplainer):
    """EigenCAM: gradient-free, class-agnostic principal component of the activations."""

    def combine(self, activations, gradients):
        return tf.nn.relu(first_principal_projection(activations))


class EigenGradCam(CamExplainer):
    """EigenGradCAM: the principal component of gradient ⊙ activation (class-discriminative)."""

    def combine(self, activations, gradients):
        return tf.nn.relu(first_principal_projection(activations * gradients))

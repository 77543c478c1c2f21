"""Score-CAM (Wang et al., CVPR-W 2020, arXiv:1910.01279): gradient-free, by batched forward passes.

For each channel k, the upsampled activation map scaled to [0, 1] masks the input; the target class's
softmax (sigmoid for one output) probability on the masked input, softmax-ed over channels, is w_k.
Masked inputs go through the model `batch_size` at a time.
"""

from __future__ import annotations

import tensorflow as tf

from tfxmed.explain.cam import CamExplainer
from tfxmed.explain.ops import chunked_map, minmax_maps, upsample

__all__ = ["ScoreCam"]


class ScoreCam(CamExplainer):
    """Score-CAM: channel weights from the confidence of the model on activation-masked inputs."""

    predicts_in_graph = False  # its explain_batch needs the target weights up front

    def _masked_scores(self, image: tf.Tensor, masks: tf.Tensor, target: tf.Tensor) -> tf.Tensor:
        """Target probability for `image` masked by each of `masks` [C, *spatial] → [C]."""
        def probabilities(chunk):
            logits = self.scores(image[None] * chunk[..., None], training=False)
            probability = tf.sigmoid(logits) if logits.shape[-1] == 1 else tf.nn.softmax(logits)
            return tf.reduce_sum(probability * target, axis=-1)

        return chunked_map(probabilities, masks, self.batch_size)

    def explain_batch(self, images, target_weights):
        activations, _ = self.feature_model(images, training=False)
        activations = tf.cast(activations, tf.float32)  # bfloat16 / float16 views
        spatial = self.input_shape[:-1]
        rank = len(activations.shape)
        channels_first = tf.transpose(activations, [0, rank - 1, *range(1, rank - 1)])

        def one_image(inputs):
            image, features, target = inputs
            masks = upsample(features, spatial)  # [C, *spatial]
            masks = minmax_maps(masks)  # each channel's mask scaled to [0, 1]
            weights = tf.nn.softmax(self._masked_scores(image, masks, target))
            # Σ_k w_k A^k (a tensordot: XLA cannot legalise the ellipsis einsum "c,c...->...")
            return tf.nn.relu(tf.tensordot(weights, features, axes=1))

        maps = tf.map_fn(
            one_image, (images, channels_first, target_weights),
            fn_output_signature=tf.TensorSpec(activations.shape[1:-1], tf.float32),
        )
        return self.finish(maps)

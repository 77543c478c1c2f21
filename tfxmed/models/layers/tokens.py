"""Token layers of the Vision Transformer (`tfxmed.models.vit`): class token, position embedding, and the
views between a token sequence [N, 1 + h·w, D] and its patch grid [N, h, w, D]."""

from __future__ import annotations

import keras
from keras import layers, ops

__all__ = ["ClassToken", "PositionEmbedding", "TokensToGrid", "GridToTokens", "TakeToken"]


@keras.saving.register_keras_serializable(package="tfxmed")
class ClassToken(layers.Layer):
    """Prepends one learned token to a sequence [N, P, D] → [N, 1 + P, D]."""

    def build(self, input_shape):
        self.token = self.add_weight(shape=(1, 1, input_shape[-1]), initializer="zeros", name="token")

    def call(self, tokens):
        batch = ops.shape(tokens)[0]
        token = ops.cast(ops.broadcast_to(self.token, (batch, 1, ops.shape(self.token)[-1])), tokens.dtype)
        return ops.concatenate([token, tokens], axis=1)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], None if input_shape[1] is None else input_shape[1] + 1, input_shape[2])


@keras.saving.register_keras_serializable(package="tfxmed")
class PositionEmbedding(layers.Layer):
    """Adds a learned embedding per position to [N, T, D] (T fixed by the input size)."""

    def build(self, input_shape):
        self.embedding = self.add_weight(shape=(1, input_shape[1], input_shape[2]),
                                         initializer=keras.initializers.RandomNormal(stddev=0.02), name="embedding")

    def call(self, tokens):
        return tokens + ops.cast(self.embedding, tokens.dtype)


@keras.saving.register_keras_serializable(package="tfxmed")
class TokensToGrid(layers.Layer):
    """The patch tokens of [N, 1 + h·w, D] as a grid [N, h, w, D], the class token (position 0) dropped."""

    def __init__(self, grid: tuple[int, int], **kwargs):
        super().__init__(**kwargs)
        self.grid = tuple(int(size) for size in grid)

    def call(self, tokens):
        return ops.reshape(tokens[:, 1:], (-1, *self.grid, ops.shape(tokens)[-1]))

    def compute_output_shape(self, input_shape):
        return (input_shape[0], *self.grid, input_shape[-1])

    def get_config(self):
        return {**super().get_config(), "grid": list(self.grid)}


@keras.saving.register_keras_serializable(package="tfxmed")
class GridToTokens(layers.Layer):
    """[class-token source [N, 1 + P, D], grid [N, h, w, D]] → the sequence [N, 1 + P, D] again."""

    def call(self, inputs):
        tokens, grid = inputs
        flat = ops.reshape(grid, (-1, grid.shape[1] * grid.shape[2], grid.shape[3]))
        return ops.concatenate([tokens[:, :1], ops.cast(flat, tokens.dtype)], axis=1)

    def compute_output_shape(self, input_shapes):
        return input_shapes[0]


@keras.saving.register_keras_serializable(package="tfxmed")
class TakeToken(layers.Layer):
    """Token `index` of [N, T, D] → [N, D] (the class token for the head)."""

    def __init__(self, index: int = 0, **kwargs):
        super().__init__(**kwargs)
        self.index = int(index)

    def call(self, tokens):
        return tokens[:, self.index]

    def compute_output_shape(self, input_shape):
        return (input_shape[0], input_shape[2])

    def get_config(self):
        return {**super().get_config(), "index": self.index}

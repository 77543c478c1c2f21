"""Vision Transformer (Dosovitskiy et al., 2021) in Keras 3: ViT-Ti/S/B with 16 px patches, CSAM optional.

    patches (Conv2D, stride = patch) → + class token → + position embedding → blocks 1..L−1
      → `patch_tokens` (the patch tokens as a grid [N, h, w, D], class token dropped) → CSAM (`csam`)
      → `tokens` (the sequence again) → block L → LayerNorm → class token → the shared head

Each block is pre-norm: x + MHA(LN(x)), then x + MLP(LN(x)) (GELU). The grid is taken at the input of
the last block, where Grad-CAM on a ViT looks (the class token gathers the patch tokens through the
last attention): `patch_tokens` (or `csam`) is the declared explain layer, and the CAM family, the
consistency loss and export work on it like on a CNN's feature map. With `attention`, CSAM refines that
grid, the counterpart of "after block 3" in the CNNs. Attention rollout (`tfxmed.explain.rollout`)
reads the blocks' attention probabilities.

Written here rather than taken from keras-hub, which pulls tensorflow-text (pinned to one TensorFlow
release) and downloads its presets; ImageNet weights are therefore not offered (`model.weights` takes a
weights file of this model, or `model.init_from` a finished run).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import keras
from keras import layers

from tfxmed.models.layers import channel_spatial_attention, classification_head
from tfxmed.models.layers.tokens import ClassToken, GridToTokens, PositionEmbedding, TakeToken, TokensToGrid
from tfxmed.models.spec import ModelSpec, declare_spec

__all__ = ["SIZES", "VitSize", "vit", "vit_spec"]


@dataclasses.dataclass(frozen=True)
class VitSize:
    width: int  # token dimension D
    depth: int  # transformer blocks
    heads: int
    mlp: int  # hidden units of each block's MLP


SIZES = {"ti": VitSize(192, 12, 3, 768), "s": VitSize(384, 12, 6, 1536), "b": VitSize(768, 12, 12, 3072)}


def vit_spec(attention: bool = True) -> ModelSpec:
    if attention:
        return ModelSpec(explain_layer="csam", attention_layer="csam_spatial", candidate_layers=("patch_tokens",))
    return ModelSpec(explain_layer="patch_tokens")


def _block(tokens, index: int, size: VitSize, dropout: float):
    name = f"block{index}"
    x = layers.LayerNormalization(epsilon=1e-6, name=f"{name}_norm1")(tokens)
    x = layers.MultiHeadAttention(size.heads, size.width // size.heads, dropout=dropout, name=f"{name}_attention")(x, x)
    tokens = layers.Add(name=f"{name}_add1")([tokens, x])
    x = layers.LayerNormalization(epsilon=1e-6, name=f"{name}_norm2")(tokens)
    x = layers.Dense(size.mlp, activation="gelu", name=f"{name}_mlp1")(x)
    x = layers.Dropout(dropout, name=f"{name}_mlp_dropout")(x)
    x = layers.Dense(size.width, name=f"{name}_mlp2")(x)
    return layers.Add(name=f"{name}_add2")([tokens, x])


def vit(
    input_shape: Sequence[int],
    num_classes: int,
    multi_label: bool = False,
    attention: bool = True,
    dropout: float = 0.3,
    size: str = "b",
    patch_size: int = 16,
    depth: int = 0,
    weights: str = "none",
    token_dropout: float = 0.0,
) -> keras.Model:
    """Builds ViT-`size` (ti | s | b) over `patch_size` px patches; `depth` > 0 overrides the size's 12 blocks.

    The input's sides must be multiples of `patch_size`. `dropout` is the head's; `token_dropout` is
    used inside the blocks (attention and MLP)."""
    if size not in SIZES:
        raise ValueError(f"ViT size must be one of {', '.join(SIZES)}; got '{size}'")
    height, width = int(input_shape[0]), int(input_shape[1])
    if height % patch_size or width % patch_size:
        raise ValueError(f"ViT input {height}x{width} px must be a multiple of the {patch_size} px patches")
    shape = dataclasses.replace(SIZES[size], depth=depth or SIZES[size].depth)
    grid = (height // patch_size, width // patch_size)
    image = keras.Input(shape=tuple(input_shape), name="image")
    patches = layers.Conv2D(shape.width, patch_size, strides=patch_size, name="patch_embed")(image)
    tokens = layers.Reshape((grid[0] * grid[1], shape.width), name="patch_sequence")(patches)
    tokens = PositionEmbedding(name="position_embedding")(ClassToken(name="class_token")(tokens))
    for index in range(1, shape.depth):
        tokens = _block(tokens, index, shape, token_dropout)
    features = TokensToGrid(grid, name="patch_tokens")(tokens)
    if attention:
        features = channel_spatial_attention(features, name="csam")
    tokens = _block(GridToTokens(name="tokens")([tokens, features]), shape.depth, shape, token_dropout)
    tokens = layers.LayerNormalization(epsilon=1e-6, name="encoder_norm")(tokens)
    outputs = classification_head(TakeToken(0, name="class_features")(tokens), num_classes, multi_label, dropout)
    model = keras.Model(image, outputs, name=f"vit_{size}{patch_size}" + ("_attention" if attention else ""))
    if weights == "imagenet":
        raise ValueError("model.weights: 'imagenet' is not offered for model.name=vit (tfxmed's own ViT; see "
                         "tfxmed.models.vit); use a weights file of this model, model.init_from, or none")
    if weights not in ("none", "", None):
        model.load_weights(weights)
    return declare_spec(model, vit_spec(attention))

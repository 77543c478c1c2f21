"""Custom Keras layers of tfxmed."""

from tfxmed.models.layers.attention import ChannelAttention, SpatialAttention, channel_spatial_attention
from tfxmed.models.layers.head import classification_head
from tfxmed.models.layers.pooling import LogSumExpPooling2D, global_pooling

__all__ = [
    "ChannelAttention", "LogSumExpPooling2D", "SpatialAttention", "channel_spatial_attention",
    "classification_head", "global_pooling",
]

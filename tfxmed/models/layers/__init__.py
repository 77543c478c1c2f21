"""Custom Keras layers of tfxmed."""

from tfxmed.models.layers.attention import ChannelAttention, SpatialAttention, channel_spatial_attention
from tfxmed.models.layers.pooling import LogSumExpPooling2D, global_pooling

__all__ = [
    "ChannelAttention", "LogSumExpPooling2D", "SpatialAttention", "channel_spatial_attention",
    "global_pooling",
]

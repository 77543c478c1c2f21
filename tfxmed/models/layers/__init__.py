"""Custom Keras layers of tfxmed."""

from tfxmed.models.layers.attention import ChannelAttention, SpatialAttention, channel_spatial_attention

__all__ = ["ChannelAttention", "SpatialAttention", "channel_spatial_attention"]

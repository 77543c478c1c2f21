"""Superpixel segmentation: the methods are named when an unknown one is asked for."""

import pytest

from tfxmed.explain.superpixels import segment


def test_unknown_segmentation_is_named(rng):
    with pytest.raises(ValueError, match="slic, quickshift"):
        segment(rng.random((8, 8, 1)), "watershed")
    assert segment(rng.random((16, 16, 1)), "quickshift").shape == (16, 16)

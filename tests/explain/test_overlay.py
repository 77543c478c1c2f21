"""Heat-map overlays (`tfxmed.explain.overlay`): the jet colours, the blend, and the PNG grid."""

import os

import numpy as np
import pytest
from PIL import Image

from tfxmed.explain.overlay import colorize, display_maps, overlay, save_overlay_grid

DARK_BLUE, DARK_RED = (0.0, 0.0, 0.5), (0.5, 0.0, 0.0)  # jet at 0 and at 1


def test_colorize_maps_zero_and_one_to_the_ends_of_jet_and_clips():
    colours = colorize(np.array([[[0.0, 1.0, -3.0, 7.0]]], np.float32)).numpy()
    assert colours.shape == (1, 1, 4, 3)
    np.testing.assert_allclose(colours[0, 0], [DARK_BLUE, DARK_RED, DARK_BLUE, DARK_RED], atol=1e-6)


def test_overlay_blends_grey_images_as_rgb(rng):
    images = rng.random((2, 5, 6, 1)).astype(np.float32)
    maps = rng.random((2, 5, 6)).astype(np.float32)
    blended = overlay(images, maps, alpha=0.25).numpy()
    assert blended.shape == (2, 5, 6, 3)
    expected = 0.75 * np.repeat(images, 3, -1) + 0.25 * colorize(maps).numpy()
    np.testing.assert_allclose(blended, expected, atol=1e-6)
    assert 0.0 <= blended.min() and blended.max() <= 1.0


@pytest.mark.parametrize(("count", "columns", "size"), [(5, 4, (880, 480)), (3, 3, (660, 240))])
def test_grid_png_has_one_cell_per_image(tmp_path, rng, count, columns, size):
    images = rng.normal(size=(count, 16, 16, 1)).astype(np.float32)
    maps = rng.random((count, 16, 16)).astype(np.float32)
    masks = np.zeros((count, 16, 16, 1), np.float32)
    masks[0, 4:8, 4:8] = 1.0
    path = str(tmp_path / "grid.png")
    save_overlay_grid(path, images, maps, masks, titles=[f"#{i}" for i in range(count)], columns=columns)
    with Image.open(path) as png:
        assert png.format == "PNG" and png.size == size  # 2.2 × 2.4 inches per cell at 100 dpi
    assert os.listdir(tmp_path) == ["grid.png"]  # written atomically: no temporary left


def test_signed_small_attributions_are_shown_as_their_positive_part_scaled_to_its_peak(tmp_path):
    """Regression: raw IG maps (signed, ~1e-3) were coloured as they were: one flat dark blue."""
    maps = np.full((2, 16, 16), -2e-3, np.float32)
    maps[0, 3:6, 3:6], maps[1, 10, 10] = 4e-3, 1e-3
    shown = display_maps(maps)
    assert shown[0, 4, 4] == 1.0 and shown[1, 10, 10] == 1.0 and shown[0, 0, 0] == 0.0 and shown[1].sum() == 1.0
    assert display_maps(np.zeros((1, 4, 4))).max() == 0.0  # no positive evidence: nothing lit
    robust = display_maps(np.arange(100, dtype=np.float32).reshape(1, 10, 10), quantile=0.5)
    assert robust[0, 0, 0] == 0.0 and (robust == 1.0).sum() == 50  # above the median: saturated
    images = np.zeros((2, 16, 16, 1), np.float32)
    pngs = []
    for name, shown_maps in (("raw", maps), ("scaled", shown)):
        save_overlay_grid(str(tmp_path / f"{name}.png"), images, shown_maps, columns=2)
        with Image.open(tmp_path / f"{name}.png") as png:
            pngs.append(np.asarray(png.convert("RGB")))
    np.testing.assert_array_equal(pngs[0], pngs[1])  # the grid shows raw maps as display_maps scales them

"""Heat-map overlays in TF ops (for TensorBoard) and PNG grids (for reports)."""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from tfxmed.metrics.maps import minmax_per_map
from tfxmed.storage import write_figure_atomic

__all__ = ["colorize", "display_maps", "overlay", "save_overlay_grid", "orthogonal_slices", "save_volume_overlay_grid"]


def _jet_table() -> np.ndarray:
    from matplotlib import colormaps

    return colormaps["jet"](np.linspace(0.0, 1.0, 256))[:, :3].astype(np.float32)


def display_maps(maps: np.ndarray, quantile: float = 1.0) -> np.ndarray:
    """Maps of any method, ready for `overlay`: the positive part (evidence for the class) divided by
    each map's `quantile` (1.0: its maximum; 0.99 keeps a few extreme pixels from hiding the rest),
    clipped to [0, 1]. Raw attributions (IG, saliency) are signed and far from [0, 1]: shown as they
    are, they would all be the bottom colour of the map."""
    positive = np.maximum(np.nan_to_num(np.asarray(maps, np.float32)), 0.0)
    flat = positive.reshape(len(positive), -1)
    high = (np.quantile(flat, quantile, axis=1) if quantile < 1.0 else flat.max(1)) if flat.size else np.ones(0)
    high = np.maximum(high, 1e-12).reshape(-1, *[1] * (positive.ndim - 1))
    return np.clip(positive / high, 0.0, 1.0).astype(np.float32)


def colorize(maps: tf.Tensor) -> tf.Tensor:
    """Maps [N, H, W] in [0, 1] → RGB [N, H, W, 3] with the jet colormap."""
    indices = tf.cast(tf.round(tf.clip_by_value(maps, 0.0, 1.0) * 255.0), tf.int32)
    return tf.gather(tf.constant(_jet_table()), indices)


def overlay(images: tf.Tensor, maps: tf.Tensor, alpha: float = 0.4) -> tf.Tensor:
    """Blends heat maps [N, H, W] onto images [N, H, W, C] in [0, 1] → RGB [N, H, W, 3] in [0, 1]."""
    images = tf.convert_to_tensor(images, tf.float32)
    if images.shape[-1] == 1:
        images = tf.image.grayscale_to_rgb(images)
    return (1.0 - alpha) * images + alpha * colorize(maps)


def save_overlay_grid(
    path: str,
    images: np.ndarray,
    maps: np.ndarray,
    masks: np.ndarray | None = None,
    titles: list[str] | None = None,
    columns: int = 4,
    alpha: float = 0.4,
) -> None:
    """Saves a grid PNG: each cell is the image with its heat map (`display_maps`), the mask outlined in white."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    blended = overlay(minmax_per_map(images, floor=1e-6), display_maps(maps), alpha).numpy()
    rows = int(np.ceil(len(images) / columns))
    figure = Figure(figsize=(2.2 * columns, 2.4 * rows))
    for index in range(rows * columns):
        axis = figure.add_subplot(rows, columns, index + 1)
        axis.axis("off")
        if index >= len(images):
            continue
        axis.imshow(blended[index])
        if masks is not None and masks[index].max() > 0:
            mask = masks[index].squeeze(-1) if masks[index].ndim == 3 else masks[index]
            axis.contour(mask, [0.5], colors="white", linewidths=0.8)
        if titles:
            axis.set_title(titles[index], fontsize=7)
    figure.tight_layout()
    write_figure_atomic(figure, path, dpi=100)


PLANES = ("axial", "coronal", "sagittal")


def orthogonal_slices(volume: np.ndarray, explanation: np.ndarray, mask: np.ndarray | None = None) -> list[tuple]:
    """The axial, coronal and sagittal planes through the peak of `explanation` [D, H, W]: for each, (image
    [.., .., C], map, mask or None) from `volume` [D, H, W, C], the map and `mask` [D, H, W(, 1)]."""
    peak = np.unravel_index(int(np.argmax(explanation)), explanation.shape)
    mask = None if mask is None else (mask[..., 0] if mask.ndim == 4 else mask)
    planes = []
    for axis in range(3):
        index = [slice(None)] * 3
        index[axis] = peak[axis]
        index = tuple(index)
        planes.append((volume[index], explanation[index], None if mask is None else mask[index]))
    return planes


def save_volume_overlay_grid(path: str, volumes: np.ndarray, maps: np.ndarray, masks: np.ndarray | None = None,
                             titles: list[str] | None = None, alpha: float = 0.4) -> None:
    """Saves a PNG with one row per volume: its axial, coronal and sagittal planes through the map's peak, each
    with the heat map blended in (`display_maps` per volume) and the mask outlined in white."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    shown = display_maps(maps)
    figure = Figure(figsize=(6.6, 2.3 * max(len(volumes), 1)))
    for row in range(len(volumes)):
        scaled = minmax_per_map(volumes[row:row + 1], floor=1e-6)[0]
        for column, (image, heat, outline) in enumerate(orthogonal_slices(scaled, shown[row],
                                                                          None if masks is None else masks[row])):
            axis = figure.add_subplot(len(volumes), 3, 3 * row + column + 1)
            axis.axis("off")
            axis.imshow(overlay(image[None], heat[None], alpha).numpy()[0], aspect="auto")
            if outline is not None and outline.max() > 0:
                axis.contour(outline, [0.5], colors="white", linewidths=0.8)
            axis.set_title(f"{titles[row] + ' ' if titles else ''}{PLANES[column]}", fontsize=7)
    figure.tight_layout()
    write_figure_atomic(figure, path, dpi=100)

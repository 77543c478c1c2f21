"""The report's gallery for volumes: per case and per method, the axial, coronal and sagittal planes through the
peak of that method's map, the map blended in and the lesion mask outlined (`tfxmed.reporting`)."""

from __future__ import annotations

import io

import numpy as np

from tfxmed.explain.overlay import PLANES, display_maps, orthogonal_slices, overlay
from tfxmed.metrics.maps import minmax_per_map

__all__ = ["volume_gallery_png"]


def volume_gallery_png(volumes: np.ndarray, masks: np.ndarray, maps: dict[str, np.ndarray],
                       captions: list[str]) -> bytes:
    """PNG bytes: one row per case; for each method three panels (its planes), mask contours in red."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    shown = minmax_per_map(volumes, floor=1e-6)
    scaled = {name: display_maps(values, quantile=0.99) for name, values in maps.items()}
    columns = [(name, plane) for name in maps for plane in PLANES]
    figure = Figure(figsize=(1.6 * len(columns), 1.9 * len(volumes)))
    FigureCanvasAgg(figure)
    for row in range(len(volumes)):
        for group, name in enumerate(maps):
            planes = orthogonal_slices(shown[row], scaled[name][row], masks[row])
            for offset, (image, heat, outline) in enumerate(planes):
                column = 3 * group + offset
                axis = figure.add_subplot(len(volumes), len(columns), row * len(columns) + column + 1)
                axis.imshow(overlay(image[None], heat[None]).numpy()[0], aspect="auto")
                if outline is not None and outline.max() > 0:
                    axis.contour(outline, [0.5], colors="red", linewidths=0.8)
                axis.axis("off")
                title = (f"{name}\n{PLANES[offset]}" if offset == 0 else PLANES[offset]) if row == 0 else ""
                if column == 0:  # the case's caption heads its row
                    title = f"{captions[row]}\n{title}" if title else captions[row]
                axis.set_title(title, fontsize=6, loc="left")
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=90)
    return buffer.getvalue()

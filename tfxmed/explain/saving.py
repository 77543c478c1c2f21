"""Saved explanations: per-image overlay PNGs, raw maps (.npz), TensorBoard images, one index.

Layout of `out_dir`: `<method>/maps.npz` (maps, indices, targets), `<method>/<index>.png` overlays,
`index.json` (methods × images with file names) and `index.html` (a table to browse them).
"""

from __future__ import annotations

import html
import json
import os

import numpy as np
import tensorflow as tf

from tfxmed.explain.overlay import display_maps, overlay
from tfxmed.metrics.maps import minmax_per_map
from tfxmed.storage import make_dirs, write_bytes_atomic, write_npz_atomic, write_text_atomic

__all__ = ["save_explanations"]


def _png(path: str, rgb: np.ndarray) -> None:
    write_bytes_atomic(tf.io.encode_png(tf.cast(tf.round(np.clip(rgb, 0, 1) * 255), tf.uint8)).numpy(), path)


def save_explanations(
    out_dir: str,
    images: np.ndarray,
    maps_by_method: dict[str, np.ndarray],
    indices: np.ndarray,
    captions: list[str],
    tensorboard_dir: str | None = None,
    alpha: float = 0.4,
) -> dict:
    """Writes every method's maps and overlays plus the index; returns the index."""
    make_dirs(out_dir)
    display = minmax_per_map(images, floor=1e-6)
    index = {"images": [{"index": int(i), "caption": c} for i, c in zip(indices, captions)], "methods": {}}
    for method, maps in maps_by_method.items():
        folder = os.path.join(out_dir, method)
        make_dirs(folder)
        write_npz_atomic(os.path.join(folder, "maps.npz"), maps=maps, indices=indices)
        blended = overlay(display, display_maps(maps), alpha).numpy()
        files = []
        for position, item in enumerate(indices):
            name = f"{int(item):05d}.png"
            _png(os.path.join(folder, name), blended[position])
            files.append(f"{method}/{name}")
        index["methods"][method] = files
        if tensorboard_dir:
            with tf.summary.create_file_writer(tensorboard_dir).as_default():
                tf.summary.image(f"explanations/{method}", blended, step=0, max_outputs=len(blended))
    write_text_atomic(json.dumps(index, indent=1), os.path.join(out_dir, "index.json"))
    methods = list(index["methods"])
    rows = []
    for position, entry in enumerate(index["images"]):
        cells = "".join(f'<td><img src="{index["methods"][m][position]}" width="128"></td>' for m in methods)
        rows.append(f"<tr><th>{html.escape(entry['caption'])}</th>{cells}</tr>")
    header = "".join(f"<th>{html.escape(m)}</th>" for m in methods)
    page = (f"<!doctype html><meta charset=utf-8><title>tfxmed explanations</title>"
            f"<table><tr><th>image</th>{header}</tr>{''.join(rows)}</table>")
    write_text_atomic(page, os.path.join(out_dir, "index.html"))
    return index

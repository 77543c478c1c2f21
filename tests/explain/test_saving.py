"""Saved explanations (`tfxmed.explain.saving`): per-method raw maps, one overlay PNG per image showing the
map scaled per image, TensorBoard images and an index."""

import glob
import json
import os

import numpy as np
import tensorflow as tf
from PIL import Image

from tfxmed.explain.saving import save_explanations


def test_maps_overlays_index_and_tensorboard(tmp_path, rng):
    images = np.zeros((3, 8, 10, 1), np.float32)  # a constant image: the overlay is the heat map alone
    maps = {"gradcam": rng.random((3, 8, 10)).astype(np.float32), "ig": rng.normal(size=(3, 8, 10)).astype(np.float32)}
    maps["gradcam"][1] *= 50.0  # each image's map is scaled by its own maximum
    indices = np.array([7, 2, 11])
    out = str(tmp_path / "explanations")
    index = save_explanations(out, images, maps, indices, ["a", "b <&>", "c"], str(tmp_path / "tb"), alpha=0.4)

    assert index == json.load(open(os.path.join(out, "index.json")))
    assert [entry["index"] for entry in index["images"]] == [7, 2, 11]
    assert index["methods"] == {m: [f"{m}/00007.png", f"{m}/00002.png", f"{m}/00011.png"] for m in ("gradcam", "ig")}
    for method, raw in maps.items():
        saved = np.load(os.path.join(out, method, "maps.npz"))
        np.testing.assert_array_equal(saved["maps"], raw)
        np.testing.assert_array_equal(saved["indices"], indices)
        for position, name in enumerate(index["methods"][method]):
            pixels = np.asarray(Image.open(os.path.join(out, name)))
            assert pixels.shape == (8, 10, 3) and pixels.dtype == np.uint8
            peak = np.unravel_index(np.argmax(raw[position]), raw[position].shape)
            np.testing.assert_array_equal(pixels[peak], [51, 0, 0])  # 0.4 × jet(1) = 0.4 × (0.5, 0, 0)
    negative = np.argwhere(maps["ig"][0] < 0)[0]  # negative attributions are shown as 0: jet(0)
    np.testing.assert_array_equal(np.asarray(Image.open(os.path.join(out, "ig/00007.png")))[tuple(negative)],
                                  [0, 0, 51])

    page = open(os.path.join(out, "index.html"), encoding="utf-8").read()
    assert page.count("<tr>") == 4 and "b &lt;&amp;&gt;" in page and 'src="ig/00011.png"' in page

    shapes = {}
    for path in glob.glob(str(tmp_path / "tb" / "events.out.tfevents.*")):
        for event in tf.compat.v1.train.summary_iterator(path):
            for value in event.summary.value:
                shapes[value.tag] = len(value.tensor.string_val) - 2  # width, height, then one PNG per image
    assert shapes == {"explanations/gradcam": 3, "explanations/ig": 3}

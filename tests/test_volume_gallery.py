import io

import numpy as np
from PIL import Image

from tfxmed.explain.overlay import orthogonal_slices
from tfxmed.volume_gallery import volume_gallery_png


def test_each_method_gets_its_three_planes_through_its_own_peak():
    volumes = np.zeros((2, 8, 10, 12, 1), np.float32)
    masks = np.zeros((2, 8, 10, 12, 1), np.float32)
    masks[:, 2:4, 3:6, 7:10] = 1.0
    maps = {"gradcam": np.zeros((2, 8, 10, 12), np.float32), "ig": np.zeros((2, 8, 10, 12), np.float32)}
    maps["gradcam"][:, 3, 4, 8] = 1.0  # inside the mask
    maps["ig"][:, 6, 1, 1] = 1.0  # elsewhere
    planes = orthogonal_slices(volumes[0], maps["gradcam"][0], masks[0])
    assert [plane[1].shape for plane in planes] == [(10, 12), (8, 12), (8, 10)]
    assert all(plane[1].max() == 1.0 and plane[2].max() == 1.0 for plane in planes)  # peak and mask in each
    assert all(plane[1].max() == 1.0 and plane[2].max() == 0.0
               for plane in orthogonal_slices(volumes[0], maps["ig"][0], masks[0])[:1])
    png = volume_gallery_png(volumes, masks, maps, ["case 1", "case 2"])
    image = Image.open(io.BytesIO(png))
    assert image.format == "PNG" and image.size[0] > image.size[1]  # 6 panels wide, 2 rows

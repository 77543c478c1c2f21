import numpy as np

from tfxmed.data.selection import has_lesion, lesion_examples, lesions_first


def _data():
    masks = np.zeros((5, 4, 4, 1), np.float32)
    masks[1, :2, :2] = 1.0  # a lesion of 4 pixels
    masks[2, 0, 0] = 0.4  # only a resized edge: no pixel above 0.5
    masks[3] = 1.0  # a lesion of 16 pixels
    masks[4, 1, 1] = 1.0  # a mask value on an example flagged as having no mask
    return {"mask": masks, "has_mask": np.array([1, 1, 1, 1, 0])}


def test_a_lesion_is_a_mask_pixel_above_one_half_on_an_example_with_a_mask():
    data = _data()
    assert has_lesion(data["mask"], data["has_mask"]).tolist() == [False, True, False, True, False]
    assert has_lesion(data["mask"]).tolist() == [False, True, False, True, True]
    assert lesion_examples(data).tolist() == [1, 3]
    assert lesion_examples({"mask": np.zeros((0, 4, 4, 1)), "has_mask": np.zeros(0)}).tolist() == []


def test_lesions_first_keeps_the_order_or_puts_the_largest_first():
    data = _data()
    assert lesions_first(data).tolist() == [1, 3, 0, 2, 4]
    assert lesions_first(data, 3).tolist() == [1, 3, 0]
    assert lesions_first(data, largest_first=True).tolist() == [3, 1, 4, 2, 0]

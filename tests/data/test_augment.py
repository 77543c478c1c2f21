import numpy as np
import tensorflow as tf

from tfxmed.data.augment import augment, rotation_transform


def _blob_image(size=32):
    yy, xx = np.mgrid[:size, :size]
    image = np.zeros((size, size, 1), np.float32)
    image[..., 0] = np.exp(-(((yy - 10) ** 2) + ((xx - 21) ** 2)) / 12.0)  # off-centre blob
    mask = (image > 0.5).astype(np.float32)
    return image, mask


def test_image_and_mask_move_together():
    image, _ = _blob_image()
    tf.random.set_seed(3)
    for _ in range(20):
        # With the image itself as the "mask", any geometric mismatch would show as a difference.
        augmented, moved = augment(tf.constant(image), tf.constant(image), brightness=0.0, contrast=0.0)
        np.testing.assert_allclose(augmented.numpy(), moved.numpy(), atol=1e-6)
    augmented, moved = augment(tf.constant(image), tf.constant(image))  # photometric: image only
    assert np.abs(augmented.numpy() - moved.numpy()).max() > 0


def test_geometry_actually_changes_the_image():
    image, mask = _blob_image()
    tf.random.set_seed(0)
    outputs = [augment(tf.constant(image), tf.constant(mask))[0].numpy() for _ in range(8)]
    assert max(np.abs(o - image).max() for o in outputs) > 0.2


def test_photometric_is_an_unclipped_affine_map_within_its_limits():
    # No clipping: a saturating clip erased bright lesions and stopped the quick-start model learning.
    image, mask = _blob_image()
    tf.random.set_seed(1)
    slopes = []
    for _ in range(20):
        out = augment(tf.constant(image), tf.constant(mask), rotation_degrees=0, flip_left_right=False,
                      crop_fraction=0, brightness=0.2, contrast=0.2)[0].numpy().ravel()
        slope, offset = np.polyfit(image.ravel(), out, 1)
        np.testing.assert_allclose(out, slope * image.ravel() + offset, atol=1e-5)
        assert 0.8 - 1e-6 <= slope <= 1.2 + 1e-6
        slopes.append(slope)
        if out.max() > 1.0:
            assert np.sum(out == out.max()) == np.sum(image == image.max())  # the peak is not flattened
    assert np.ptp(slopes) > 0.05


def test_rotation_transform_rotates_a_point_about_the_centre():
    transform = rotation_transform(tf.constant([np.pi / 2]), 5, 5).numpy()[0]
    a0, a1, a2, b0, b1, b2 = transform[:6]
    # Output pixel (x=4, y=2) samples input (x', y') = (a0 x + a1 y + a2, b0 x + b1 y + b2).
    x, y = 4.0, 2.0
    assert np.allclose([a0 * x + a1 * y + a2, b0 * x + b1 * y + b2], [2.0, 4.0], atol=1e-5)


def test_disabled_augmentation_is_identity():
    image, mask = _blob_image()
    out_image, out_mask = augment(
        tf.constant(image), tf.constant(mask), rotation_degrees=0, flip_left_right=False,
        brightness=0, contrast=0, crop_fraction=0,
    )
    np.testing.assert_allclose(out_image.numpy(), image)
    np.testing.assert_allclose(out_mask.numpy(), mask)


def test_a_batch_draws_per_image_and_flips_exactly():
    image, mask = _blob_image()
    batch = tf.constant(np.repeat(image[None], 16, axis=0))
    tf.random.set_seed(1)
    flipped, moved = augment(batch, batch, rotation_degrees=0, crop_fraction=0, brightness=0, contrast=0)
    for out, same in zip(flipped.numpy(), moved.numpy()):  # each image: itself or its mirror, mask alike
        assert np.allclose(out, image, atol=1e-5) or np.allclose(out, image[:, ::-1], atol=1e-5)
        np.testing.assert_allclose(out, same, atol=1e-6)
    mirrored = [np.allclose(out, image[:, ::-1], atol=1e-5) for out in flipped.numpy()]
    assert 0 < sum(mirrored) < 16  # drawn per image
    photometric, none = augment(batch, None, rotation_degrees=0, crop_fraction=0, flip_left_right=False)
    assert none is None and len({float(np.round(o.mean(), 5)) for o in photometric.numpy()}) == 16


def test_a_crop_zooms_in_without_overshoot():
    image, _ = _blob_image()
    tf.random.set_seed(5)
    out, _ = augment(tf.constant(image[None]), None, rotation_degrees=0, flip_left_right=False, brightness=0,
                     contrast=0, crop_fraction=0.3)
    assert not np.allclose(out.numpy()[0], image)
    assert out.numpy().max() <= image.max() + 1e-5  # bilinear resampling inside the image: no overshoot

import keras
import numpy as np

from tfxmed.explain import GradCam, Saliency
from tfxmed.explain.sanity import cascading_randomization
from tfxmed.models.small_cnn import small_cnn


def test_cascading_randomization_drives_gradient_maps_away_from_the_trained_ones():
    keras.utils.set_random_seed(0)
    model = small_cnn((32, 32, 1), 2, attention=False, width=8, blocks=(1, 1, 1))
    rng = np.random.default_rng(0)
    images = rng.random((6, 32, 32, 1)).astype("float32")
    model.compile(optimizer=keras.optimizers.Adam(3e-3), loss="categorical_crossentropy")
    model.fit(images, np.eye(2)[[0, 1, 0, 1, 0, 1]], epochs=5, verbose=0)  # weights away from init
    before = [w.copy() for w in model.get_weights()]

    rows = cascading_randomization(model, lambda m: Saliency(m), images, targets=[1] * 6)
    weighted = [layer.name for layer in reversed(model.layers) if layer.trainable_weights]
    assert [row["layer"] for row in rows] == [None, *weighted]
    assert rows[0]["spearman"] == 1.0 and rows[0]["ssim"] == 1.0
    assert rows[-1]["spearman"] < 0.5 and rows[-1]["ssim"] < rows[0]["ssim"]
    assert all(np.array_equal(a, b) for a, b in zip(before, model.get_weights()))  # the model itself is untouched

    cam_rows = cascading_randomization(model, lambda m: GradCam(m, layer="last_conv_relu"), images, targets=[1] * 6)
    assert cam_rows[-1]["spearman"] < 0.5

    # A "method" that ignores the model (here: the image itself) fails the check: nothing moves.
    input_rows = cascading_randomization(model, lambda m: (lambda x, t: np.asarray(x)[..., 0]), images, targets=[1] * 6)
    assert all(row["spearman"] == 1.0 and abs(row["ssim"] - 1.0) < 1e-9 for row in input_rows)

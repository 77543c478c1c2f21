import keras
import numpy as np
import tensorflow as tf

from tfxmed.explain import GradCam, IntegratedGradients
from tfxmed.explain.layers import GradCAMLayer, IntegratedGradientsLayer


def test_layers_inside_a_keras_model_match_the_explainers(hand_model, rng, tmp_path):
    images = rng.normal(size=(3, 4, 4, 1)).astype("float32")
    inputs = keras.Input((4, 4, 1))
    targets = keras.Input((2,))
    explain_model = keras.Model(
        [inputs, targets],
        {"gradcam": GradCAMLayer(hand_model, layer_name="features")(inputs),
         "ig": IntegratedGradientsLayer(hand_model, steps=8)(inputs, targets)},
    )
    one_hot = np.eye(2, dtype=np.float32)[[1, 0, 1]]
    out = explain_model.predict([images, one_hot], verbose=0)
    predicted = hand_model.predict(images, verbose=0).argmax(-1)
    np.testing.assert_allclose(
        out["gradcam"], GradCam(hand_model, layer="features")(images, predicted), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(
        out["ig"], IntegratedGradients(hand_model, steps=8)(images, [1, 0, 1]), rtol=1e-5, atol=1e-6)
    # ... and inside a SavedModel signature.
    archive = keras.export.ExportArchive()
    archive.track(explain_model)
    archive.add_endpoint(
        "explain", lambda x, t: explain_model([x, t]),
        input_signature=[tf.TensorSpec([None, 4, 4, 1], tf.float32), tf.TensorSpec([None, 2], tf.float32)],
    )
    archive.write_out(str(tmp_path / "saved"), verbose=False)
    loaded = tf.saved_model.load(str(tmp_path / "saved"))
    reloaded = loaded.explain(tf.constant(images), tf.constant(one_hot))
    np.testing.assert_allclose(reloaded["gradcam"].numpy(), out["gradcam"], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(reloaded["ig"].numpy(), out["ig"], rtol=1e-5, atol=1e-6)

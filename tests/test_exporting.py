import subprocess
import sys
import textwrap

import numpy as np
import tensorflow as tf

from tests.helpers import REPO
from tfxmed.config import ModelConfig
from tfxmed.data.pipeline import normalize
from tfxmed.explain import GradCam
from tfxmed.exporting import export_saved_model
from tfxmed.models import build_model

LOAD_SCRIPT = textwrap.dedent(
    """
    import sys, numpy as np, tensorflow as tf
    loaded = tf.saved_model.load(sys.argv[1])
    images = tf.constant(np.load(sys.argv[2]))
    serving = loaded.signatures["serving_default"](images=images)
    explain = loaded.signatures["explain"](images=images)
    np.savez(sys.argv[3], serving=serving["probabilities"].numpy(),
             explain=explain["probabilities"].numpy(), gradcam=explain["gradcam"].numpy())
    """
)


def test_saved_model_signatures_match_keras_in_a_fresh_process(tmp_path, rng):
    model = build_model(ModelConfig(name="small_cnn", blocks=[1, 1], width=4, attention=True), (24, 24, 1), 2, False)
    manifest = {"pixel_mean": [0.4], "pixel_std": [0.2]}
    path = export_saved_model(model, manifest, 24, str(tmp_path / "saved_model"))
    images = rng.random((3, 24, 24, 1)).astype("float32")
    np.save(tmp_path / "images.npy", images)
    result = subprocess.run(
        [sys.executable, "-c", LOAD_SCRIPT, path, str(tmp_path / "images.npy"), str(tmp_path / "out.npz")],
        cwd=REPO, capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    out = np.load(tmp_path / "out.npz")
    inputs = normalize(tf.constant(images), manifest).numpy()
    expected = model.predict(inputs, verbose=0)
    np.testing.assert_allclose(out["serving"], expected, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(out["explain"], expected, rtol=1e-4, atol=1e-6)
    maps = GradCam(model)(inputs, expected.argmax(-1))
    assert out["gradcam"].shape == (3, 24, 24)
    np.testing.assert_allclose(out["gradcam"], maps, atol=1e-4)

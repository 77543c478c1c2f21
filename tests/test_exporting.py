import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import tensorflow as tf

from tests.helpers import REPO
from tfxmed.config import ModelConfig, SmallCnnConfig
from tfxmed.data.pipeline import normalize
from tfxmed.explain import GradCam
from tfxmed.errors import OutputExistsError
from tfxmed.exporting import EXPORT_MARKER, export_saved_model
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


MANIFEST = {"pixel_mean": [0.4], "pixel_std": [0.2]}


def _tiny_model():
    config = ModelConfig(name="small_cnn", attention=True, small_cnn=SmallCnnConfig(blocks=[1, 1], width=4))
    return build_model(config, (24, 24, 1), 2, False)


def test_saved_model_signatures_match_keras_in_a_fresh_process(tmp_path, rng):
    model, manifest = _tiny_model(), MANIFEST
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


def test_export_never_deletes_a_folder_it_did_not_write(tmp_path):
    """Regression (issue 20): exporting onto an unrelated non-empty folder deleted it."""
    model = _tiny_model()
    theirs = tmp_path / "theirs"
    theirs.mkdir()
    (theirs / "notes.txt").write_text("keep me")
    with pytest.raises(OutputExistsError, match="did not export"):
        export_saved_model(model, MANIFEST, 24, str(theirs))
    assert (theirs / "notes.txt").read_text() == "keep me" and os.listdir(theirs) == ["notes.txt"]
    a_file = tmp_path / "a_file"
    a_file.write_text("x")
    with pytest.raises(OutputExistsError, match="is a file"):
        export_saved_model(model, MANIFEST, 24, str(a_file))


def test_export_replaces_its_own_earlier_export_and_fills_an_empty_folder(tmp_path):
    model = _tiny_model()
    empty = tmp_path / "empty"
    empty.mkdir()
    path = export_saved_model(model, MANIFEST, 24, str(empty))
    assert os.path.exists(os.path.join(path, "saved_model.pb")) and os.path.exists(os.path.join(path, EXPORT_MARKER))
    before = os.path.getmtime(os.path.join(path, EXPORT_MARKER))
    export_saved_model(model, MANIFEST, 24, path)  # ours: replaced whole
    assert os.path.getmtime(os.path.join(path, EXPORT_MARKER)) >= before
    assert sorted(os.listdir(tmp_path)) == ["empty"]  # no temporary or old copy left beside it

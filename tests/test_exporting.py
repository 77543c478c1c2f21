import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import tensorflow as tf
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.helpers import REPO
from tfxmed.calibration import apply
from tfxmed.config import ModelConfig, SmallCnnConfig
from tfxmed.data.pipeline import normalize
from tfxmed.default_explanation import SERVED_FUSION, Choice, explainer_for
from tfxmed.errors import OutputExistsError
from tfxmed.explain import GradCam
from tfxmed.explain.layers import ExplanationLayer
from tfxmed.exporting import EXPORT_MARKER, export_saved_model
from tfxmed.models import build_model
from tfxmed.models.factory import logits_model

LOAD_SCRIPT = textwrap.dedent(
    """
    import sys, numpy as np, tensorflow as tf
    loaded = tf.saved_model.load(sys.argv[1])
    images = tf.constant(np.load(sys.argv[2]))
    serving = loaded.signatures["serving_default"](images=images)
    explain = loaded.signatures["explain"](images=images)
    np.savez(sys.argv[3], serving=serving["probabilities"].numpy(),
             explain=explain["probabilities"].numpy(), maps=explain["explanation"].numpy())
    """
)


MANIFEST = {"pixel_mean": [0.4], "pixel_std": [0.2], "multi_label": False}


def _tiny_model():
    config = ModelConfig(name="small_cnn", attention=True, small_cnn=SmallCnnConfig(blocks=[1, 1], width=4))
    return build_model(config, (24, 24, 1), 2, False)


def _served_in_a_fresh_process(path: str, images: np.ndarray, tmp_path) -> dict:
    """Both signatures' outputs for `images`, from the SavedModel loaded by a new Python process."""
    np.save(tmp_path / "images.npy", images)
    result = subprocess.run(
        [sys.executable, "-c", LOAD_SCRIPT, path, str(tmp_path / "images.npy"), str(tmp_path / "out.npz")],
        cwd=REPO, capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return dict(np.load(tmp_path / "out.npz"))


def test_saved_model_signatures_match_keras_in_a_fresh_process(tmp_path, rng):
    model, manifest = _tiny_model(), MANIFEST
    path = export_saved_model(model, manifest, 24, str(tmp_path / "saved_model"))
    images = rng.random((3, 24, 24, 1)).astype("float32")
    out = _served_in_a_fresh_process(path, images, tmp_path)
    inputs = normalize(tf.constant(images), manifest).numpy()
    expected = model.predict(inputs, verbose=0)
    np.testing.assert_allclose(out["serving"], expected, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(out["explain"], expected, rtol=1e-4, atol=1e-6)
    maps = GradCam(model)(inputs, expected.argmax(-1))
    assert out["maps"].shape == (3, 24, 24)
    np.testing.assert_allclose(out["maps"], maps, atol=1e-4)


def test_the_saved_model_returns_calibrated_probabilities_after_reload(tmp_path, rng):
    model, manifest = _tiny_model(), MANIFEST
    fitted = {"method": "temperature", "temperature": 2.5}
    path = export_saved_model(model, manifest, 24, str(tmp_path / "saved_model"), calibration=fitted)
    images = rng.random((4, 24, 24, 1)).astype("float32")
    out = _served_in_a_fresh_process(path, images, tmp_path)
    logits = logits_model(model).predict(normalize(tf.constant(images), manifest).numpy(), verbose=0)
    expected = apply(fitted, logits, multi_label=False)
    np.testing.assert_allclose(out["serving"], expected, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(out["explain"], expected, rtol=1e-4, atol=1e-6)
    assert not np.allclose(expected, model.predict(normalize(tf.constant(images), manifest).numpy(), verbose=0))
    with open(os.path.join(path, EXPORT_MARKER), encoding="utf-8") as stream:
        assert json.load(stream)["calibration"] == fitted


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


def test_the_served_fusion_matches_the_offline_one_after_reload_in_a_fresh_process(tmp_path, rng):
    """explain.method=fusion: the SavedModel serves Grad-CAM + IG (LIME cannot run in a graph)."""
    model = _tiny_model()
    choice = Choice("fusion", "csam")
    path = export_saved_model(model, MANIFEST, 24, str(tmp_path / "fused"), choice)
    images = rng.random((3, 24, 24, 1)).astype("float32")
    out = _served_in_a_fresh_process(path, images, tmp_path)
    inputs = normalize(tf.constant(images), MANIFEST).numpy()
    predicted = model.predict(inputs, verbose=0).argmax(-1)
    offline = explainer_for(model, choice, serving=True)
    assert offline.weights == SERVED_FUSION and set(offline.explainers) == {"gradcam", "ig"}
    np.testing.assert_allclose(out["maps"], offline(inputs, predicted), atol=2e-3)
    marker = json.load(open(os.path.join(path, EXPORT_MARKER)))
    assert marker["explanation"]["method"] == "fusion" and marker["explanation"]["served_weights"] == SERVED_FUSION


def test_host_side_methods_are_refused_for_serving():
    with pytest.raises(ValueError, match="computes on the host"):
        ExplanationLayer(_tiny_model(), "lime")


BAD_REQUESTS = textwrap.dedent(
    """
    import sys, numpy as np, tensorflow as tf
    loaded = tf.saved_model.load(sys.argv[1])
    good = np.full((1, 24, 24, 1), 0.5, np.float32)
    requests = {"rank 3": good[0], "3 channels": np.repeat(good, 3, -1), "empty": good[:0],
                "inf pixel": np.where(np.arange(576).reshape(1, 24, 24, 1) == 7, np.inf, good).astype(np.float32)}
    for signature in ("serving_default", "explain"):
        for name, images in requests.items():
            try:
                loaded.signatures[signature](images=tf.constant(images))
                print(signature, name, "ACCEPTED")
            except tf.errors.InvalidArgumentError as error:
                print(signature, name, "REFUSED", " ".join(error.message.split())[:2000])
    probabilities = loaded.signatures["serving_default"](images=tf.constant(good))["probabilities"]
    print("still up", float(probabilities.numpy().sum()))
    """
)


def test_bad_requests_get_clear_errors_and_the_process_stays_up(tmp_path):
    """Regression (issue 20): a rank-3 tensor aborted the server; an inf pixel returned NaN."""
    path = export_saved_model(_tiny_model(), MANIFEST, 24, str(tmp_path / "sm"))
    result = subprocess.run([sys.executable, "-c", BAD_REQUESTS, path], cwd=REPO, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    lines = result.stdout.splitlines()
    for signature in ("serving_default", "explain"):
        for name, received in (("rank 3", "[24 24 1]"), ("3 channels", "[1 24 24 3]"), ("empty", "[0 24 24 1]"),
                               ("inf pixel", "[1 24 24 1] [; all values finite:] [0]")):
            line = next(line for line in lines if line.startswith(f"{signature} {name} "))
            assert "REFUSED" in line and "must be a batch [N >= 1, H >= 2, W >= 2, 1] of finite" in line, line
            assert f"[received shape] {received}" in line, line
    assert lines[-1].startswith("still up") and float(lines[-1].split()[-1]) == pytest.approx(1.0)


BLURRED_IG = {"baseline": "blurred", "blur_sigma": 1.0}


@pytest.mark.parametrize("choice", [
    Choice("fusion", "csam", options={"combination": "product"}),
    Choice("ig", options={**BLURRED_IG, "smoothing_sigma": 1.0}),  # what `auto` picks on the quick start
    Choice("fusion", "csam", options={"combination": "mean", "options": {"ig": BLURRED_IG}}),
], ids=lambda choice: choice.name)
def test_a_chosen_explanation_with_options_is_served_like_it_is_computed_offline(tmp_path, rng, choice):
    model = _tiny_model()
    path = export_saved_model(model, MANIFEST, 24, str(tmp_path / "sm"), choice)
    images = rng.random((2, 24, 24, 1)).astype("float32")
    loaded = tf.saved_model.load(path)
    served = loaded.signatures["explain"](images=tf.constant(images))["explanation"].numpy()
    inputs = normalize(tf.constant(images), MANIFEST).numpy()
    offline = explainer_for(model, choice, serving=True)
    expected = offline(inputs, model.predict(inputs, verbose=0).argmax(-1))
    np.testing.assert_allclose(served, expected, atol=2e-3 * max(1.0, float(np.abs(expected).max())))
    marker = json.load(open(os.path.join(path, EXPORT_MARKER)))["explanation"]
    assert {key: marker[key] for key in choice.options} == choice.options


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    path = export_saved_model(_tiny_model(), MANIFEST, 24, str(tmp_path_factory.mktemp("served") / "sm"))
    return tf.saved_model.load(path)


@settings(max_examples=40, deadline=None)
@given(shape=st.lists(st.integers(0, 9), min_size=0, max_size=5).map(lambda dims: [d * 3 for d in dims]),
       poison=st.sampled_from([None, np.nan, np.inf, -np.inf]),
       signature=st.sampled_from(["serving_default", "explain"]))
def test_any_request_is_answered_or_refused_clearly(served, shape, poison, signature):
    """Property (issue 20): any float32 tensor gets either correct outputs or one clear InvalidArgument."""
    images = np.full(shape, 0.5, np.float32)
    if poison is not None and images.size:
        images.reshape(-1)[images.size // 2] = poison
    valid = len(shape) == 4 and shape[0] > 0 and min(shape[1:3]) >= 2 and shape[3] == 1 and poison is None
    try:
        outputs = served.signatures[signature](images=tf.constant(images))
    except tf.errors.InvalidArgumentError as error:
        assert not valid and "images must be a batch [N >= 1, H >= 2, W >= 2, 1]" in error.message
        return
    assert valid
    probabilities = outputs["probabilities"].numpy()
    assert probabilities.shape == (shape[0], 2) and np.allclose(probabilities.sum(-1), 1, atol=1e-5)
    if signature == "explain":
        assert outputs["explanation"].shape == tuple(shape[:3]) and np.isfinite(outputs["explanation"]).all()


def _xla_functions(path: str) -> list[str]:
    """Names of the functions of the `explain` signature's graph that are marked for XLA."""
    loaded = tf.saved_model.load(path)
    library = loaded.signatures["explain"].graph.as_graph_def().library.function
    return [f.signature.name for f in library if f.attr["_XlaMustCompile"].b]


@pytest.mark.slow  # three fresh processes, two exports
def test_signatures_compiled_with_xla_serve_the_same_and_still_refuse_bad_requests(tmp_path, rng):
    """runtime.jit_compile (issue 17 §2): the `explain` signature's compute is one XLA computation, as on a
    TPU; it serves the uncompiled maps, and the request check (outside XLA, which drops assertions) holds."""
    model = _tiny_model()
    path = export_saved_model(model, MANIFEST, 24, str(tmp_path / "xla"), jit_compile=True)
    assert json.load(open(os.path.join(path, EXPORT_MARKER)))["jit_compile"] is True
    assert _xla_functions(path) and not _xla_functions(export_saved_model(model, MANIFEST, 24, str(tmp_path / "plain")))
    images = rng.random((3, 24, 24, 1)).astype("float32")
    out = _served_in_a_fresh_process(path, images, tmp_path)
    inputs = normalize(tf.constant(images), MANIFEST).numpy()
    expected = model.predict(inputs, verbose=0)
    np.testing.assert_allclose(out["explain"], expected, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(out["maps"], GradCam(model)(inputs, expected.argmax(-1)), atol=1e-4)
    result = subprocess.run([sys.executable, "-c", BAD_REQUESTS, path], cwd=REPO, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    refused = [line for line in result.stdout.splitlines() if "REFUSED" in line and "must be a batch" in line]
    assert len(refused) == 8 and result.stdout.splitlines()[-1].startswith("still up")

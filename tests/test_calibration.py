import numpy as np
import pytest
import tensorflow as tf
from sklearn.metrics import roc_auc_score as roc_auc

from tfxmed import calibration
from tfxmed.metrics.curves import expected_calibration_error


def _overconfident_binary(rng, n=4000, true_temperature=3.0):
    """Logits whose probabilities are right only after dividing by `true_temperature`."""
    true_logit = rng.normal(0.0, 1.5, n)
    labels = (rng.random(n) < 1 / (1 + np.exp(-true_logit))).astype(int)
    logits = np.stack([np.zeros(n), true_logit * true_temperature], axis=1)
    return logits, np.eye(2)[labels]


def test_temperature_scaling_recovers_the_temperature_and_lowers_ece_without_changing_auc(rng):
    logits, onehot = _overconfident_binary(rng)
    fitted = calibration.fit(logits, onehot, multi_label=False)
    assert fitted["method"] == "temperature"
    assert fitted["temperature"] == pytest.approx(3.0, rel=0.15)
    assert fitted["val_nll_after"] < fitted["val_nll_before"]
    raw = calibration.apply({"method": "none"}, logits, False)[:, 1]
    calibrated = calibration.apply(fitted, logits, False)[:, 1]
    labels = onehot[:, 1]
    assert expected_calibration_error(labels, calibrated) < 0.03 < expected_calibration_error(labels, raw)
    assert roc_auc(labels, calibrated) == pytest.approx(roc_auc(labels, raw), abs=1e-12)
    np.testing.assert_array_equal(calibrated > 0.5, raw > 0.5)  # the decision at argmax is unchanged


def test_auto_takes_platt_for_two_classes_when_the_model_over_calls_one_class(rng):
    """A bias in the logit difference is what temperature cannot fix; `auto` sees it out of fold on val."""
    n = 600
    true_logit = rng.normal(0.0, 2.0, 2 * n)
    labels = (rng.random(2 * n) < 1 / (1 + np.exp(-true_logit))).astype(int)
    logits = np.stack([np.zeros(2 * n), 0.6 * true_logit + 1.5], axis=1)  # under-confident, over-calls class 1
    val, test = slice(0, n), slice(n, None)
    fitted = calibration.fit(logits[val], np.eye(2)[labels[val]], multi_label=False)
    assert fitted["method"] == "platt" and fitted["of"] == "logit difference"
    assert fitted["selection"]["cv_nll"]["platt"] < fitted["selection"]["cv_nll"]["temperature"]
    assert fitted["scale"][1] == pytest.approx(1 / 0.6, rel=0.2) and fitted["bias"][1] == pytest.approx(-2.5, abs=0.5)
    temperature = calibration.fit(logits[val], np.eye(2)[labels[val]], multi_label=False, method="temperature")
    platt_p = calibration.apply(fitted, logits[test], False)[:, 1]
    temperature_p = calibration.apply(temperature, logits[test], False)[:, 1]
    ece = {name: expected_calibration_error(labels[test], p) for name, p in (("platt", platt_p),
                                                                            ("temperature", temperature_p))}
    assert ece["platt"] < 0.5 * ece["temperature"], ece
    assert roc_auc(labels[test], platt_p) == pytest.approx(roc_auc(labels[test], logits[test, 1]), abs=1e-12)
    np.testing.assert_allclose(calibration.apply(fitted, logits[test], False).sum(-1), 1, atol=1e-6)


def test_a_large_scale_keeps_the_auc_exactly(rng):
    """σ(z) rounds to 1.0 in float32 from z ≈ 17: calibrated probabilities stay float64 so no ties appear."""
    labels = np.arange(400) % 2
    difference = rng.normal(0, 1, 400) + 3.0 * labels
    logits = np.stack([np.zeros(400), difference], axis=1).astype("float32")
    fitted = {"method": "platt", "scale": [4.0, 4.0], "bias": [0.0, 11.0], "of": "logit difference"}
    calibrated = calibration.apply(fitted, logits, False)[:, 1]
    assert np.mean(4.0 * difference + 11.0 > 17.0) > 0.3  # a third of the scores would tie at 1.0 in float32
    assert roc_auc(labels, calibrated) == roc_auc(labels, difference)


def test_auto_keeps_temperature_when_the_bias_does_not_earn_its_parameter(rng):
    logits, onehot = _overconfident_binary(rng, n=600)
    fitted = calibration.fit(logits, onehot, multi_label=False)
    assert fitted["method"] == "temperature"
    assert fitted["selection"]["method"] == "temperature"
    tiny = calibration.fit(logits[:6], np.eye(2)[[0, 1, 0, 1, 0, 1]], multi_label=False)
    assert tiny["method"] == "temperature" and "fewer than" in tiny["selection"]["reason"]


def test_platt_scaling_calibrates_each_label_separately(rng):
    n = 4000
    truth = rng.normal(0, 1.5, (n, 2))
    labels = (rng.random((n, 2)) < 1 / (1 + np.exp(-truth))).astype(float)
    logits = np.stack([truth[:, 0] * 0.4 + 1.0, truth[:, 1] * 2.5], axis=1)  # under- and over-confident
    fitted = calibration.fit(logits, labels, multi_label=True)
    assert fitted["method"] == "platt"
    assert fitted["scale"][0] == pytest.approx(2.5, rel=0.2) and fitted["bias"][0] == pytest.approx(-2.5, abs=0.4)
    assert fitted["scale"][1] == pytest.approx(0.4, rel=0.2) and abs(fitted["bias"][1]) < 0.2
    probabilities = calibration.apply(fitted, logits, True)
    for k in range(2):
        assert expected_calibration_error(labels[:, k], probabilities[:, k]) < 0.03


def test_platt_scaling_fits_each_label_on_its_scored_examples_only(rng):
    """−1 marks a label that is not scored (weight 0, e.g. U-Ignore): not a negative to calibrate towards."""
    n = 2000
    truth = rng.normal(0, 1.5, (n, 2))
    labels = (rng.random((n, 2)) < 1 / (1 + np.exp(-truth))).astype(float)
    logits = truth * 2.0
    ignored = labels.copy()
    ignored[: n // 2, 0] = np.where(labels[: n // 2, 0] == 1, -1, 0)  # half of label 0's positives unscored
    fitted = calibration.fit(logits, ignored, multi_label=True)
    scored = ignored[:, 0] >= 0
    alone = calibration.fit(logits[scored][:, :1], ignored[scored][:, :1], multi_label=True)
    assert fitted["scale"][0] == pytest.approx(alone["scale"][0])
    assert fitted["bias"][0] == pytest.approx(alone["bias"][0])
    as_negatives = calibration.fit(logits, np.maximum(ignored, 0), multi_label=True)  # what scoring them as 0 did
    assert as_negatives["bias"][0] < fitted["bias"][0] - 0.3


def test_the_graph_version_matches_numpy(rng):
    logits = rng.normal(0, 3, (16, 3)).astype("float32")
    for fitted, multi_label in (({"method": "temperature", "temperature": 2.5}, False),
                                ({"method": "platt", "scale": [0.5, 2.0, 1.0], "bias": [0.1, -1.0, 0.0]}, True),
                                ({"method": "none"}, False)):
        np.testing.assert_allclose(calibration.apply_tf(fitted, tf.constant(logits), multi_label).numpy(),
                                   calibration.apply(fitted, logits, multi_label), atol=1e-6)


def test_bad_requests_are_refused_with_the_reason(rng):
    logits, onehot = _overconfident_binary(rng, n=50)
    with pytest.raises(ValueError, match="unknown"):
        calibration.fit(logits, onehot, False, method="isotonic")
    with pytest.raises(ValueError, match="two classes"):
        calibration.fit(np.tile(logits, (1, 2))[:, :3], np.eye(3)[np.arange(50) % 3], False, method="platt")
    with pytest.raises(ValueError, match="multi-label"):
        calibration.fit(logits, onehot, True, method="temperature")
    with pytest.raises(ValueError, match=r"\[N, K\]"):
        calibration.fit(logits[:, 0], onehot, False)
    assert calibration.fit(logits, onehot, False, method="none") == {"method": "none"}


def test_a_softmax_per_group_gets_a_temperature_per_group(rng):
    """Group 0 is overconfident by 3, group 1 calibrated: each group's own temperature is recovered, each
    group's probabilities sum to 1, and the graph version matches."""
    n, groups = 3000, [[0, 1, 2], [3, 4]]
    true0, true1 = rng.normal(0, 1.5, (n, 3)), rng.normal(0, 1.5, (n, 2))

    def draw(logits):
        p = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
        return np.eye(logits.shape[1])[[rng.choice(logits.shape[1], p=row) for row in p]]

    labels = np.concatenate([draw(true0), draw(true1)], axis=1)
    logits = np.concatenate([3.0 * true0, true1], axis=1)
    fitted = calibration.fit(logits, labels, True, groups=groups)
    assert fitted["method"] == "group_temperature" and fitted["label_groups"] == groups
    assert 1 / fitted["scale"][0] == pytest.approx(3.0, rel=0.1)
    assert 1 / fitted["scale"][3] == pytest.approx(1.0, rel=0.1)
    assert fitted["val_nll_after"] < fitted["val_nll_before"]
    probabilities = calibration.apply(fitted, logits, True)
    np.testing.assert_allclose(probabilities[:, :3].sum(-1), 1.0)
    np.testing.assert_allclose(probabilities[:, 3:].sum(-1), 1.0)
    np.testing.assert_allclose(calibration.apply_tf(fitted, tf.constant(logits, tf.float32), True).numpy(),
                               probabilities, atol=1e-5)
    assert calibration.fit(logits, labels, True, "none", groups) == {"method": "none", "label_groups": groups}
    with pytest.raises(ValueError, match="temperature"):
        calibration.fit(logits, labels, True, "platt", groups)

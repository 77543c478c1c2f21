import csv
import glob
import json
import os

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from tfrecords_tools.chexpert import OBSERVATIONS, convert_chexpert
from tfxmed.data import features
from tfxmed.storage import load_manifest

HEADER = ["Path", "Sex", "Age", "Frontal/Lateral", "AP/PA", *OBSERVATIONS]


def _fake_chexpert(tmp_path, rng):
    """CheXpert-v1.0-small/{train,valid}.csv + train/patientNNNNN/studyK/viewK_frontal.jpg, as shipped."""
    root = tmp_path / "CheXpert-v1.0-small"
    rows = {"train": [], "valid": []}
    for split, patients in (("train", range(1, 13)), ("valid", range(64541, 64545))):
        for patient in patients:
            for view, side in ((1, "frontal"), (2, "lateral")):
                relative = f"CheXpert-v1.0-small/{split}/patient{patient:05d}/study1/view{view}_{side}.jpg"
                os.makedirs(tmp_path / os.path.dirname(relative), exist_ok=True)
                Image.fromarray(rng.integers(0, 255, (20, 24), dtype=np.uint8)).save(tmp_path / relative)
                labels = [""] * len(OBSERVATIONS)
                labels[OBSERVATIONS.index("Edema")] = "-1.0" if patient % 2 else "1.0"
                labels[OBSERVATIONS.index("Cardiomegaly")] = "0.0" if patient % 3 else "1.0"
                view_name = "Frontal" if side == "frontal" else "Lateral"
                rows[split].append([relative, "Female", "71", view_name, "AP", *labels])
    rows["train"][0][HEADER.index("Pneumonia")] = "maybe"  # unparsable
    rows["train"][2][0] = "CheXpert-v1.0-small/train/patient99999/study1/view1_frontal.jpg"  # missing file
    for split, content in rows.items():
        with open(root / f"{split}.csv", "w", newline="") as stream:
            csv.writer(stream).writerows([HEADER, *content])
    return str(root)


def _records(out):
    examples = []
    for path in sorted(glob.glob(os.path.join(out, "*.tfrecord"))):
        split = os.path.basename(path).split("-")[0].encode()
        for raw in tf.data.TFRecordDataset(path):
            parsed = features.parse(raw, load_manifest(out)["num_classes"], 1)
            examples.append({"split": split, **{k: v.numpy() for k, v in parsed.items()}})
    return examples


def test_uncertainty_policies_frontal_filter_official_test_and_deidentification(tmp_path, rng):
    root = _fake_chexpert(tmp_path, rng)
    edema, cardio = OBSERVATIONS.index("Edema"), OBSERVATIONS.index("Cardiomegaly")
    outputs = {}
    for policy in ("ones", "zeros", "ignore", "multiclass"):
        out = str(tmp_path / policy)
        sum(convert_chexpert(root, out, policy=policy, val_fraction=0.25, salt="s", shard_examples=8))
        outputs[policy] = (load_manifest(out), _records(out))
    manifest, records = outputs["ignore"]
    assert manifest["filtered_lateral"] == 16 and manifest["skipped"] == 2
    assert {s: v["count"] for s, v in manifest["splits"].items()}.get("test") == 4  # valid.csv, frontal only
    assert sum(v["count"] for v in manifest["splits"].values()) == 14  # 12 + 4 frontal, minus 2 bad rows
    reasons = (tmp_path / "ignore" / "skipped.csv").read_text()
    assert "column Pneumonia: unparsable label" in reasons and "missing file" in reasons
    assert "maybe" not in reasons  # a cell's text is never echoed: a shifted row may hold a name there

    uncertain = [r for r in records if r["label_weight"][edema] == 0.0]
    certain = [r for r in records if r["label_weight"][edema] == 1.0]
    assert uncertain and certain and all(r["label"][edema] == 0.0 for r in uncertain)  # U-Ignore: masked out
    assert all(r["label"][edema] == 1.0 for r in certain)
    ones = {r["source"]: r["label"][edema] for r in outputs["ones"][1]}
    zeros = {r["source"]: r["label"][edema] for r in outputs["zeros"][1]}
    assert set(ones.values()) == {1.0} and set(zeros.values()) == {0.0, 1.0}
    multi_manifest, multi_records = outputs["multiclass"]
    assert multi_manifest["num_classes"] == 42 and multi_manifest["class_names"][3 * edema + 2] == "Edema:uncertain"
    for record in multi_records:
        groups = record["label"].reshape(14, 3)
        assert np.all(groups.sum(1) == 1)  # exactly one state per observation
    assert {tuple(r["label"].reshape(14, 3)[edema]) for r in multi_records} == {(0, 0, 1), (0, 1, 0)}
    assert all(r["label"][cardio] in (0.0, 1.0) for r in records)

    by_patient = {}
    for record in records:
        by_patient.setdefault(record["patient"], set()).add(record["split"])
    assert all(len(splits) == 1 for splits in by_patient.values())  # no patient in two splits
    assert {b"train", b"val"} <= {s for v in by_patient.values() for s in v}
    for policy in outputs:
        blob = b"".join(open(p, "rb").read() for p in glob.glob(str(tmp_path / policy / "*")))
        assert b"patient0000" not in blob and b"patient6454" not in blob and b"Female" not in blob


def test_bad_policy_and_missing_csv_are_named(tmp_path):
    with pytest.raises(ValueError, match="policy must be one of"):
        sum(convert_chexpert(str(tmp_path), str(tmp_path / "out"), policy="maybe"))
    with pytest.raises(FileNotFoundError, match="train.csv"):
        sum(convert_chexpert(str(tmp_path), str(tmp_path / "out")))


def test_cli_converts_chexpert_with_a_policy(tmp_path, rng):
    from tfrecords_tools.convert import main

    root = _fake_chexpert(tmp_path, rng)
    assert main(["chexpert", root, "--policy", "zeros", "--out", str(tmp_path / "cli"), "--salt", "s"]) == 0
    assert load_manifest(str(tmp_path / "cli"))["uncertainty_policy"] == "zeros"


def test_u_ignore_weights_reach_the_training_loss(tmp_path, rng):

    from tests.helpers import TINY_CONFIG
    from tfxmed.config import load_config
    from tfxmed.data import pipeline
    from tfxmed.models import build_model
    from tfxmed.training.loop import compile_model

    out = str(tmp_path / "ignore")
    sum(convert_chexpert(_fake_chexpert(tmp_path, rng), out, policy="ignore", val_fraction=0.25, salt="s"))
    manifest = load_manifest(out)
    config = load_config(TINY_CONFIG, [f"data.tfrecord_dir={out}", "data.source=tfrecords"])
    batch = next(iter(pipeline.build_dataset(out, manifest, "test", config.data, False, 4)))
    dataset = pipeline.build_dataset(out, manifest, "test", config.data, False, 4)
    images, labels, weights = next(iter(pipeline.to_keras(dataset)))
    assert weights.shape == (4, 14) and np.array_equal(weights.numpy(), batch["label_weight"].numpy())
    assert (weights.numpy()[:, OBSERVATIONS.index("Edema")] == 0).any()  # uncertain Edema is ignored
    model = build_model(config.model, (32, 32, 1), 14, True)
    compile_model(model, config, manifest, steps_per_epoch=1)
    loss = model.train_on_batch(images, labels, sample_weight=weights)
    assert np.isfinite(loss if np.isscalar(loss) else loss[0])


def test_u_ignore_labels_are_left_out_of_the_metrics_not_scored_as_negatives(tmp_path, rng):
    from tests.helpers import TINY_CONFIG
    from tfxmed.config import load_config
    from tfxmed.evaluation import collect_split, metric_labels
    from tfxmed.metrics import classification_report

    out = str(tmp_path / "ignore")
    sum(convert_chexpert(_fake_chexpert(tmp_path, rng), out, policy="ignore", val_fraction=0.25, salt="s"))
    manifest = load_manifest(out)
    config = load_config(TINY_CONFIG, [f"data.tfrecord_dir={out}", "data.source=tfrecords"])
    data = collect_split(out, manifest, config, "train")
    labels = metric_labels(data, multi_label=True)
    edema = OBSERVATIONS.index("Edema")
    uncertain = data["label_weight"][:, edema] == 0
    assert uncertain.any() and np.all(labels[uncertain, edema] == -1) and np.all(labels[~uncertain, edema] == 1)
    # Scores that rank the uncertain studies lowest: as negatives they would make Edema's AUC perfect.
    scores = np.full(labels.shape, 0.5)
    scores[:, edema] = np.where(uncertain, 0.1, 0.9)
    report = classification_report(labels, scores, manifest["class_names"], multi_label=True)
    assert report["auc_per_class"]["Edema"] is None  # every scored Edema label is positive: undefined
    as_negatives = classification_report(np.maximum(labels, 0), scores, manifest["class_names"], multi_label=True)
    assert as_negatives["auc_per_class"]["Edema"] == 1.0


@pytest.mark.slow
def test_u_multiclass_trains_a_softmax_per_observation_and_serves_calibrated_groups(tmp_path, rng):
    """U-MultiClass end to end: the model ends in a softmax per observation group (each sums to 1), the
    calibration is a temperature per group, and evaluate and the exported SavedModel give grouped probabilities."""
    from tests.helpers import TINY_CONFIG
    from tests.test_exporting import _served_in_a_fresh_process
    from tfxmed import calibration
    from tfxmed.config import load_config
    from tfxmed.evaluation import collect_split, evaluate_run
    from tfxmed.exporting import export_run
    from tfxmed.models.layers.head import label_groups_of
    from tfxmed.runs import load_run
    from tfxmed.training import train

    out = str(tmp_path / "multiclass")
    sum(convert_chexpert(_fake_chexpert(tmp_path, rng), out, policy="multiclass", val_fraction=0.25, salt="s"))
    config = load_config(TINY_CONFIG, [f"data.tfrecord_dir={out}", "data.source=tfrecords", "train.epochs=1",
                                       f"runtime.run_dir={tmp_path / 'run'}", "train.tensorboard_images=0",
                                       "data.batch_size=2", "explain.num_overlays=0"])
    train(config, tf.distribute.get_strategy(), verbose=0)
    run = load_run(str(tmp_path / "run"))
    groups = label_groups_of(run.model)
    assert groups == [[3 * i, 3 * i + 1, 3 * i + 2] for i in range(14)]
    test = collect_split(run.data_dir, run.manifest, run.config, "test")
    own = run.model.predict(test["image"], verbose=0)
    np.testing.assert_allclose(own.reshape(-1, 14, 3).sum(-1), 1.0, atol=1e-5)
    metrics = evaluate_run(run.root, "test")
    fitted = json.load(open(tmp_path / "run" / "calibration.json"))
    assert fitted["method"] == "group_temperature" and fitted["label_groups"] == groups
    assert len(metrics["classification"]["auc_per_class"]) == 42  # each state of each observation scored
    expected = calibration.predict(run.model, test["image"], fitted, True)
    np.testing.assert_allclose(expected.reshape(-1, 14, 3).sum(-1), 1.0, atol=1e-9)
    path = export_run(run.root)
    raw = test["image"][:2] * np.asarray(run.manifest["pixel_std"]) + np.asarray(run.manifest["pixel_mean"])
    served = _served_in_a_fresh_process(path, raw.astype("float32"), tmp_path)
    np.testing.assert_allclose(served["serving"], expected[:2], atol=1e-4)

import csv
import glob
import os

import pytest
import yaml

from tests.helpers import REPO
from tfxmed.config import ConfigError, load_config
from tfxmed.experiments.tuning import declare_space, load_search, make_tuner, trial_config, write_results

TUNE_TINY = os.path.join(REPO, "configs", "tune_tiny.yaml")


def _search_file(tmp_path, space, experiment="configs/tiny.yaml"):
    path = tmp_path / "search.yaml"
    path.write_text(yaml.safe_dump({"experiment": os.path.join(REPO, experiment), "space": space}, sort_keys=False))
    return str(path)


def test_trial_config_applies_values_factors_and_lists_and_rejects_bad_keys(tmp_path):
    space = {
        "train.learning_rate": {"type": "float", "min": 1e-4, "max": 1e-2, "sampling": "log"},
        "model.small_cnn.blocks": {"type": "choice", "values": [[1, 1], [2, 2, 2]]},
        "train.consistency.enabled": {"type": "boolean"},
        "train.consistency.alpha": {"type": "choice", "values": [0.1, 0.3],
                                    "when": {"train.consistency.enabled": [True]}},
        "augment": {"type": "float", "min": 0.0, "max": 1.0,
                    "set": {"data.rotation_degrees": 20, "data.crop_fraction": 0.1}},
    }
    spec = load_search(_search_file(tmp_path, space))
    config = trial_config(spec, {"train.learning_rate": 0.003, "model.small_cnn.blocks": "[2, 2, 2]", "augment": 0.5,
                                 "train.consistency.enabled": False, "tuner/epochs": 7}, "runs/x", epochs=7)
    assert config.train.learning_rate == 0.003 and config.model.small_cnn.blocks == [2, 2, 2]
    assert config.data.rotation_degrees == 10.0 and config.data.crop_fraction == pytest.approx(0.05)
    assert config.train.epochs == 7 and config.runtime.run_dir == "runs/x"
    assert config.train.consistency.alpha == spec.base.train.consistency.alpha  # inactive: base value kept

    hp = declare_space(spec, "random")
    assert not hp.is_active("train.consistency.alpha")  # conditional on enabled, which starts False
    hp.values["train.consistency.enabled"] = True
    assert hp.is_active("train.consistency.alpha")

    with pytest.raises(ConfigError, match="model.small_cnn.widht"):
        load_search(_search_file(tmp_path, {"model.small_cnn.widht": {"type": "int", "min": 8, "max": 16}}))
    with pytest.raises(ConfigError, match="train.epochs"):  # wrong value type for the target key
        load_search(_search_file(tmp_path, {"train.epochs": {"type": "choice", "values": ["many"]}}))
    with pytest.raises(ConfigError, match="needs a 'step'"):
        no_step = {"model.dropout": {"type": "float", "min": 0, "max": 0.5}}
        declare_space(load_search(_search_file(tmp_path, no_step)), "grid")


@pytest.fixture
def tiny_search(tiny_dataset):
    return load_search(TUNE_TINY, (f"data.tfrecord_dir={tiny_dataset}",))


@pytest.mark.slow
def test_grid_search_writes_results_hparams_and_a_runnable_best_config(tiny_search, tmp_path):
    out = str(tmp_path / "grid")
    tuner = make_tuner(tiny_search, "grid", default_strategy(), out, max_trials=3)
    tuner.search()
    summary = write_results(tuner, out)
    rows = list(csv.DictReader(open(os.path.join(out, "results.csv"))))
    assert len(rows) == 3 and all(row["status"] == "COMPLETED" for row in rows)
    scores = [float(row["val_auc"]) for row in rows]
    assert scores == sorted(scores, reverse=True) and summary["best"]["val_auc"] == pytest.approx(scores[0])
    # The grid walks the declared values in order: trials differ in their settings.
    assert len({tuple(row[k] for k in tiny_search.space) for row in rows}) == 3

    best = load_config(os.path.join(out, "best_config.yaml"))
    assert best.train.learning_rate == pytest.approx(float(rows[0]["train.learning_rate"]))
    assert best.model.attention == (rows[0]["model.attention"] == "True")
    assert best.data.tfrecord_dir == tiny_search.base.data.tfrecord_dir and best.train.epochs == 1
    assert "| trial | status | val_auc |" in open(os.path.join(out, "results.md")).read()

    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(os.path.join(out, "tensorboard", rows[0]["trial"]))
    events.Reload()
    assert "_hparams_/session_start_info" in events.summary_metadata  # one HParams session per trial
    import tensorflow as tf

    assert float(tf.make_ndarray(events.Tensors("val_auc")[0].tensor_proto)) == pytest.approx(scores[0])


def default_strategy():
    import tensorflow as tf

    return tf.distribute.get_strategy()


@pytest.mark.slow
def test_random_search_resumes_an_interrupted_trial_and_extends(tiny_search, tmp_path, monkeypatch):
    import tfxmed.experiments.tuning as tuning  # where the trials call train

    out = str(tmp_path / "random")
    real_train, calls = tuning.train, []

    def killed_on_second(config, strategy, **kwargs):
        calls.append(config.runtime.run_dir)
        if len(calls) == 2:
            raise KeyboardInterrupt  # like Ctrl-C in the middle of the second trial
        return real_train(config, strategy, **kwargs)

    monkeypatch.setattr(tuning, "train", killed_on_second)
    with pytest.raises(KeyboardInterrupt):
        make_tuner(tiny_search, "random", default_strategy(), out, max_trials=2).search()
    monkeypatch.setattr(tuning, "train", real_train)
    first = glob.glob(os.path.join(out, "trials", "*", "trial.json"))
    assert len(first) == 1
    stamp = os.path.getmtime(first[0])

    resumed = make_tuner(tiny_search, "random", default_strategy(), out, max_trials=3)
    resumed.search()
    summary = write_results(resumed, out)
    assert summary["trials"] == 3
    finished = glob.glob(os.path.join(out, "trials", "*", "trial.json"))
    assert len(finished) == 3 and os.path.getmtime(first[0]) == stamp  # the finished trial was not re-run
    assert calls[1] in {os.path.dirname(f) for f in finished}  # the interrupted one completed


def test_the_shipped_medmnist_search_declares_every_knob():
    spec = load_search(os.path.join(REPO, "configs", "tune_medmnist.yaml"))
    hp = declare_space(spec, "random")
    assert {"train.learning_rate", "data.batch_size", "model.dropout", "model.attention", "model.small_cnn.width",
            "model.small_cnn.blocks", "model.small_cnn.kernel_size", "train.label_smoothing", "train.consistency.alpha",
            "augment_strength"} <= {p.name for p in hp.space}
    values = {"augment_strength": 1.5, "model.small_cnn.kernel_size": 5, "model.small_cnn.blocks": "[2, 2, 2]"}
    config = trial_config(spec, values, "runs/t")
    assert config.data.rotation_degrees == 15.0 and config.model.small_cnn.kernel_size == 5 and config.train.epochs == 8


def test_first_trial_defaults_runs_the_declared_defaults_then_draws_at_random(tmp_path):
    from keras_tuner.engine.trial import TrialStatus

    space = {"train.learning_rate": {"type": "float", "min": 1e-4, "max": 1e-2, "sampling": "log", "default": 3e-3},
             "model.small_cnn.blocks": {"type": "choice", "values": [[1, 1], [2, 2]], "default": [2, 2]},
             "train.consistency.enabled": {"type": "boolean", "default": True},
             "train.consistency.alpha": {"type": "choice", "values": [0.1, 0.3], "default": 0.3,
                                         "when": {"train.consistency.enabled": [True]}}}
    path = tmp_path / "search.yaml"
    path.write_text(yaml.safe_dump({"experiment": os.path.join(REPO, "configs", "tiny.yaml"), "first_trial": "defaults",
                                    "space": space}))
    spec = load_search(str(path))
    oracle = make_tuner(spec, "random", None, str(tmp_path / "out"), max_trials=10, seed=1).oracle
    first = oracle.create_trial("tuner0")
    assert first.status == TrialStatus.RUNNING
    assert first.hyperparameters.values == {"train.learning_rate": 3e-3, "model.small_cnn.blocks": "[2, 2]",
                                            "train.consistency.enabled": True, "train.consistency.alpha": 0.3}
    oracle.end_trial(first)
    drawn = [oracle.create_trial(f"tuner{k}").hyperparameters.values["train.learning_rate"] for k in range(1, 4)]
    assert all(value != 3e-3 for value in drawn) and len(set(drawn)) == 3  # then random draws

    with pytest.raises(ConfigError, match="needs --tuner random"):
        make_tuner(spec, "grid", None, str(tmp_path / "grid"), max_trials=2)
    space["model.small_cnn.blocks"]["default"] = [3, 3]
    path.write_text(yaml.safe_dump({"experiment": os.path.join(REPO, "configs", "tiny.yaml"), "space": space}))
    with pytest.raises(ConfigError, match=r"space.model.small_cnn.blocks: .*one of the choices"):
        load_search(str(path))
    space["model.small_cnn.blocks"]["default"], space["train.learning_rate"]["default"] = [2, 2], 0.5
    path.write_text(yaml.safe_dump({"experiment": os.path.join(REPO, "configs", "tiny.yaml"), "space": space}))
    with pytest.raises(ConfigError, match=r"space.train.learning_rate.default 0.5 is outside"):
        load_search(str(path))


def test_the_auto_search_starts_from_the_medmnist_recipe_itself():
    from tfxmed.config import to_dict

    spec = load_search(os.path.join(REPO, "configs", "auto_search.yaml"))
    assert spec.first_trial == "defaults"
    defaults = declare_space(spec, "random").values  # what the first trial runs
    config = to_dict(trial_config(spec, defaults, spec.base.runtime.run_dir))
    assert config == to_dict(spec.base)  # trial 0 is the recipe, key for key

"""KerasTuner search over experiment configs (the library behind `python -m tfxmed tune`).

A search file names a base experiment and a search space whose entries set config keys:

    experiment: configs/medmnist.yaml        # relative to the working directory or this file
    set: [train.epochs=12]                   # optional overrides of the base
    space:
      train.learning_rate: {type: float, min: 3.0e-4, max: 3.0e-3, sampling: log}
      model.small_cnn.blocks: {type: choice, values: [[1, 1, 1], [2, 2, 2]]}
      train.consistency.enabled: {type: boolean}
      train.consistency.alpha: {type: choice, values: [0.1, 0.2], when: {train.consistency.enabled: [true]}}
      augment: {type: float, min: 0.0, max: 1.0, step: 0.5,
                set: {data.rotation_degrees: 15, data.crop_fraction: 0.1}}   # value × each factor

Entry types: float / int (`min`, `max`, optional `step`, `sampling: linear|log`), choice (`values`;
lists allowed), boolean, fixed (`value`). `when` makes an entry conditional (KerasTuner conditional
scopes). Each trial is a full `tfxmed.training.train` run under the chosen strategy in
`<out>/trials/<trial id>`; the objective is the validation AUC of the epoch that run keeps
(`train.monitor`). Hyperband trials train from scratch for their bracket's epochs (no checkpoint
hand-off, so each trial's cosine schedule is whole).
"""

from __future__ import annotations

import csv
import json
import os
from typing import Any

import yaml

from tfxmed.config import ConfigError, Experiment, apply_overrides, from_dict, load_config, save_config, to_dict
from tfxmed.storage import atomic_path, write_json_atomic, write_text_atomic
from tfxmed.training import train

__all__ = ["SearchSpec", "load_search", "declare_space", "trial_config", "make_tuner", "write_results", "search",
           "default_out_dir", "TUNERS"]

TUNERS = ("random", "grid", "hyperband")
OBJECTIVE = "val_auc"
_TYPES = ("float", "int", "choice", "boolean", "fixed")


FIRST_TRIALS = ("random", "defaults")


class SearchSpec:
    """A parsed search file: the base experiment, the space entries (name → definition) and what the first
    trial of a random search runs (`first_trial`: "defaults" = every entry at its `default`)."""

    def __init__(self, path: str, base: Experiment, space: dict[str, dict], first_trial: str = "random"):
        self.path, self.base, self.space, self.first_trial = path, base, space, first_trial


def _resolve(path: str, relative_to: str) -> str:
    if os.path.exists(path) or os.path.isabs(path):
        return path
    candidate = os.path.join(os.path.dirname(relative_to), path)
    return candidate if os.path.exists(candidate) else path


def _check_entry(path: str, name: str, entry: Any) -> None:
    where = f"{path}: space.{name}"
    if not isinstance(entry, dict) or entry.get("type") not in _TYPES:
        raise ConfigError(f"{where}: expected a mapping with type one of {', '.join(_TYPES)}, got {entry!r}")
    required = {"float": ("min", "max"), "int": ("min", "max"), "choice": ("values",), "fixed": ("value",)}
    missing = [key for key in required.get(entry["type"], ()) if key not in entry]
    if missing:
        raise ConfigError(f"{where}: type {entry['type']} needs {', '.join(missing)}")
    targets = entry.get("set", name)
    if not isinstance(targets, (str, dict)):
        raise ConfigError(f"{where}.set: expected a config key or a mapping of config key → factor")


def load_search(path: str, overrides: tuple[str, ...] = ()) -> SearchSpec:
    """Reads a search file; every target key is checked against the experiment config up front."""
    if not os.path.exists(path):
        raise FileNotFoundError(f"search file '{path}' not found")
    with open(path, encoding="utf-8") as stream:
        raw = yaml.safe_load(stream) or {}
    unknown = sorted(set(raw) - {"experiment", "set", "space", "first_trial"})
    if unknown:
        raise ConfigError(f"{path}: unknown keys {unknown}; expected experiment, set, space, first_trial")
    if not raw.get("space"):
        raise ConfigError(f"{path}: 'space' must declare at least one hyperparameter")
    first_trial = raw.get("first_trial", "random")
    if first_trial not in FIRST_TRIALS:
        raise ConfigError(f"{path}: first_trial must be one of {', '.join(FIRST_TRIALS)}; got {first_trial!r}")
    base = load_config(_resolve(raw["experiment"], path) if raw.get("experiment") else None,
                       [*raw.get("set", []), *overrides])
    for name, entry in raw["space"].items():
        _check_entry(path, name, entry)
    spec = SearchSpec(path, base, raw["space"], first_trial)
    probe = {name: _example_value(entry) for name, entry in spec.space.items()}
    trial_config(spec, probe, "probe")  # raises ConfigError naming a wrong key or value type
    declare_space(spec, "random")  # raises ConfigError naming a default outside its entry's values or range
    return spec


def _example_value(entry: dict) -> Any:
    kind = entry["type"]
    return {"float": entry.get("min"), "int": entry.get("min"), "boolean": True,
            "fixed": entry.get("value")}.get(kind, (entry.get("values") or [None])[0])


def _encode(value: Any) -> Any:
    """KerasTuner choices hold scalars: lists (e.g. `model.small_cnn.blocks`) travel as JSON text."""
    return json.dumps(value) if isinstance(value, (list, dict)) else value


def _decode(value: Any) -> Any:
    if isinstance(value, str) and value[:1] in "[{":
        return json.loads(value)
    return value


def _parents_first(spec: SearchSpec) -> list[tuple[str, dict]]:
    """Space entries ordered so that each conditional entry follows the entry it depends on."""
    ordered, placed, pending = [], set(), list(spec.space.items())
    while pending:
        ready = [(n, e) for n, e in pending
                 if not set(e.get("when") or {}) - placed or set(e.get("when") or {}) - set(spec.space)]
        if not ready:
            raise ConfigError(f"{spec.path}: the 'when' conditions of {[n for n, _ in pending]} form a cycle")
        ordered.extend(ready)
        placed.update(n for n, _ in ready)
        pending = [(n, e) for n, e in pending if n not in placed]
    return ordered


def declare_space(spec: SearchSpec, tuner_kind: str):
    """A `keras_tuner.HyperParameters` holding the search file's space (conditions included)."""
    import keras_tuner

    hp = keras_tuner.HyperParameters()
    for name, entry in _parents_first(spec):
        kind = entry["type"]
        if tuner_kind == "grid" and kind in ("float", "int") and "step" not in entry:
            raise ConfigError(f"{spec.path}: space.{name}: a grid search needs a 'step' for {kind} ranges")

        def declare(name=name, entry=entry, kind=kind):
            default = entry.get("default")  # KerasTuner's own default otherwise: min, first choice, False
            if kind in ("float", "int") and default is not None and not entry["min"] <= default <= entry["max"]:
                raise ConfigError(f"{spec.path}: space.{name}.default {default!r} is outside [min, max]")
            try:
                if kind == "float":
                    hp.Float(name, float(entry["min"]), float(entry["max"]), step=entry.get("step"),
                             sampling=entry.get("sampling", "linear"), default=default)
                elif kind == "int":
                    hp.Int(name, int(entry["min"]), int(entry["max"]), step=entry.get("step"),
                           sampling=entry.get("sampling", "linear"), default=default)
                elif kind == "choice":
                    hp.Choice(name, [_encode(value) for value in entry["values"]],
                              default=None if default is None else _encode(default))
                elif kind == "boolean":
                    hp.Boolean(name, default=bool(default))
                else:
                    hp.Fixed(name, _encode(entry["value"]))
            except ValueError as error:  # e.g. a choice default that is not one of the values
                raise ConfigError(f"{spec.path}: space.{name}: {error}") from None

        conditions = entry.get("when") or {}
        if len(conditions) > 1:
            raise ConfigError(f"{spec.path}: space.{name}.when: one parent hyperparameter at most")
        if conditions:
            (parent, values), = conditions.items()
            if parent not in spec.space:
                raise ConfigError(f"{spec.path}: space.{name}.when names '{parent}', which is not in the space")
            with hp.conditional_scope(parent, [_encode(value) for value in values]):
                declare()
        else:
            declare()
    return hp


def trial_config(spec: SearchSpec, values: dict[str, Any], run_dir: str, epochs: int | None = None) -> Experiment:
    """The base experiment with one trial's values applied (inactive conditional entries are absent)."""
    config = to_dict(spec.base)
    overrides = []
    for name, value in values.items():
        if name not in spec.space:  # KerasTuner's own entries such as tuner/epochs
            continue
        targets = spec.space[name].get("set", name)
        value = _decode(value)
        if isinstance(targets, str):
            overrides.append((targets, value))
        else:
            overrides.extend((key, value * factor) for key, factor in targets.items())
    overrides.append(("runtime.run_dir", run_dir))
    if epochs:
        overrides.append(("train.epochs", int(epochs)))
    config = apply_overrides(config, [f"{key}={json.dumps(value)}" for key, value in overrides])
    return from_dict(config)


def _make_tuner_class():
    import keras_tuner

    class ExperimentTuner(keras_tuner.Tuner):
        """Runs each trial as a whole tfxmed training run; reports the validation AUC of its kept epoch."""

        def __init__(self, spec: SearchSpec, strategy, out_dir: str, oracle, verbose: int = 0):
            self.spec, self.strategy, self.out_dir, self.train_verbose = spec, strategy, out_dir, verbose
            super().__init__(oracle=oracle, directory=out_dir, project_name="keras_tuner")

        def run_trial(self, trial, *args, **kwargs):
            hp = trial.hyperparameters
            values = {name: hp.get(name) for name in self.spec.space if hp.is_active(name)}
            run_dir = os.path.join(self.out_dir, "trials", trial.trial_id)
            config = trial_config(self.spec, values, run_dir, hp.values.get("tuner/epochs"))
            # Resumes a killed trial; a trial folder is the tuner's own, so a stale finished one is replaced.
            result = train(config, self.strategy, verbose=self.train_verbose, overwrite=True)
            seconds = result.train_seconds  # a resumed trial's killed attempt included: `auto` budgets from it
            score = float(result.best_val_auc if result.best_val_auc is not None else 0.0)
            _log_hparams(os.path.join(self.out_dir, "tensorboard", trial.trial_id), trial.trial_id, values,
                         {OBJECTIVE: score, "epochs": result.epochs_run, "train_seconds": seconds})
            write_json_atomic({"values": values, OBJECTIVE: score, "epochs": result.epochs_run,
                               "train_seconds": seconds}, os.path.join(run_dir, "trial.json"))
            return {OBJECTIVE: score}

    return ExperimentTuner


def _log_hparams(log_dir: str, trial_id: str, values: dict, metrics: dict) -> None:
    """One TensorBoard HParams session per trial: its values and its metrics."""
    import tensorflow as tf
    from tensorboard.plugins.hparams import api as hparams_api

    readable = {name: value if isinstance(value, (bool, int, float, str)) else str(value)
                for name, value in values.items()}
    with tf.summary.create_file_writer(log_dir).as_default():
        hparams_api.hparams(readable, trial_id=trial_id)
        for name, value in metrics.items():
            tf.summary.scalar(name, float(value), step=0)


def _defaults_first(oracle_class):
    """`oracle_class` whose first trial takes every hyperparameter's default (e.g. the recipe as it is)."""
    from keras_tuner.engine.trial import TrialStatus

    class DefaultsFirstOracle(oracle_class):
        def populate_space(self, trial_id):
            if self.trials:  # a resumed search has its first trial already
                return super().populate_space(trial_id)
            # A declared space's values are its active hyperparameters at their defaults.
            return {"status": TrialStatus.RUNNING, "values": dict(self.hyperparameters.values)}

    return DefaultsFirstOracle


def _stoppable(oracle_class, stop):
    """`oracle_class` whose next trial is refused (the search ends) once `stop()` is true."""
    from keras_tuner.engine.trial import TrialStatus

    class StoppableOracle(oracle_class):
        def populate_space(self, trial_id):
            if stop():
                return {"status": TrialStatus.STOPPED, "values": None}
            return super().populate_space(trial_id)

    return StoppableOracle


def make_tuner(spec: SearchSpec, kind: str, strategy, out_dir: str, max_trials: int, seed: int = 42,
               hyperband_factor: int = 3, verbose: int = 0, stop=None):
    """The tuner for `kind` over the spec's space; an existing `out_dir` is resumed, never overwritten.

    `stop`: a function checked before each new trial (random and grid); true ends the search there,
    e.g. when a time budget is spent (`tfxmed.experiments.auto`).
    """
    import keras_tuner

    if kind not in TUNERS:
        raise ConfigError(f"--tuner must be one of {', '.join(TUNERS)}; got '{kind}'")
    if spec.first_trial != "random" and kind != "random":
        raise ConfigError(f"{spec.path}: first_trial: {spec.first_trial} needs --tuner random; got {kind}")
    hp = declare_space(spec, kind)
    objective = keras_tuner.Objective(OBJECTIVE, direction="max")
    common = dict(objective=objective, hyperparameters=hp, seed=seed, tune_new_entries=False, allow_new_entries=False)
    wrap = (lambda oracle_class: _stoppable(oracle_class, stop)) if stop else (lambda oracle_class: oracle_class)
    if kind == "random":
        random_oracle = keras_tuner.oracles.RandomSearchOracle
        if spec.first_trial == "defaults":
            random_oracle = _defaults_first(random_oracle)
        oracle = wrap(random_oracle)(max_trials=max_trials, **common)
    elif kind == "grid":
        oracle = wrap(keras_tuner.oracles.GridSearchOracle)(max_trials=max_trials, **common)
    else:
        oracle = keras_tuner.oracles.HyperbandOracle(
            max_epochs=spec.base.train.epochs, factor=hyperband_factor, **common)
    return _make_tuner_class()(spec, strategy, out_dir, oracle, verbose)


def write_results(tuner, out_dir: str) -> dict:
    """`results.csv`, `results.md` (best first) and `best_config.yaml`; returns the best trial's summary."""
    rows = []
    for trial in tuner.oracle.trials.values():
        values = {name: _decode(trial.hyperparameters.get(name)) for name in tuner.spec.space
                  if trial.hyperparameters.is_active(name)}
        score = trial.metrics.get_best_value(OBJECTIVE) if trial.metrics.exists(OBJECTIVE) else None
        epochs = trial.hyperparameters.values.get("tuner/epochs", tuner.spec.base.train.epochs)
        rows.append({"trial": trial.trial_id, "status": trial.status, OBJECTIVE: score, "epochs": epochs, **values})
    rows.sort(key=lambda row: (row[OBJECTIVE] is None, -(row[OBJECTIVE] or 0.0), row["trial"]))
    columns = ["trial", "status", OBJECTIVE, "epochs", *tuner.spec.space]
    with atomic_path(os.path.join(out_dir, "results.csv")) as temporary, \
            open(temporary, "w", newline="", encoding="utf-8") as stream:
        writer = csv.DictWriter(stream, columns, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for row in rows:
        cells = [f"{row[c]:.4f}" if c == OBJECTIVE and row[c] is not None else str(row.get(c, "–")) for c in columns]
        lines.append("| " + " | ".join(cells) + " |")
    write_text_atomic("\n".join(lines) + "\n", os.path.join(out_dir, "results.md"))
    completed = [row for row in rows if row[OBJECTIVE] is not None and row["status"] == "COMPLETED"]
    if not completed:
        return {"trials": len(rows), "best": None}
    best = completed[0]
    best_trial = tuner.oracle.trials[best["trial"]]
    config = trial_config(tuner.spec, {n: best_trial.hyperparameters.get(n) for n in best if n in tuner.spec.space},
                          os.path.join("runs", f"{tuner.spec.base.name}-best"), best["epochs"])
    save_config(config, os.path.join(out_dir, "best_config.yaml"))
    return {"trials": len(rows), "best": best, "best_config": os.path.join(out_dir, "best_config.yaml")}


def default_out_dir(search_path: str, kind: str) -> str:
    """`runs/<search file stem>-<tuner>`: where a search writes when no folder is given."""
    return os.path.join("runs", f"{os.path.splitext(os.path.basename(search_path))[0]}-{kind}")


def search(spec: SearchSpec, kind: str, strategy, out_dir: str, max_trials: int, verbose: int = 0) -> dict:
    """Runs (or resumes) the search into `out_dir`; returns the results summary."""
    os.makedirs(out_dir, exist_ok=True)
    tuner = make_tuner(spec, kind, strategy, out_dir, max_trials, spec.base.runtime.seed, verbose=verbose)
    tuner.search()
    return {"out": out_dir, **write_results(tuner, out_dir)}

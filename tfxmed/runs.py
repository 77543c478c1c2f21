"""The run directory: where each artefact of a training run lives, what made it, and loading it back.

    RUN/config.yaml                the resolved configuration
    RUN/run_info.json              seed, versions, git SHA, command, dataset folder, strategy
    RUN/checkpoints/best.keras     the kept classifier (by train.monitor: validation AUC or loss), plus best.keras.json
    RUN/backup/                    BackupAndRestore state of an unfinished run
    RUN/history.csv                one row per epoch
    RUN/calibration.json           temperature (or per-label Platt) scaling fitted on validation
    RUN/tensorboard/               scalars, Grad-CAM images, explanations
    RUN/eval/                      metrics.json, ROC / confusion PNGs, maps and overlays
    RUN/explanations/              `python -m tfxmed explain` output
    RUN/saved_model/               `python -m tfxmed export` output
    RUN/report.html                `python -m tfxmed report` output

Every command that reads a run goes through `load_run`; every path above comes from `RunPaths`.
"""

from __future__ import annotations

import dataclasses
import datetime
import importlib.metadata
import json
import os
import platform
import subprocess
import sys

from tfxmed.config import ConfigError, Experiment, load_config, save_config, to_dict
from tfxmed.errors import RunDirectoryError
from tfxmed.storage import exists, is_dir, list_dir, load_manifest, make_dirs, open_file, remove, write_json_atomic

__all__ = ["Run", "RunPaths", "claim_run_dir", "load_run", "git_sha", "package_versions", "write_run_info"]

# Runtime keys that may change between a run and its resumption (where and how it runs, not what).
RESUMABLE_RUNTIME_KEYS = ("strategy", "cpu_devices", "tpu", "run_dir", "start_timeout")

PACKAGES = ("tfxmed", "tensorflow", "tensorflow-cpu", "keras", "numpy", "scikit-learn", "scipy")


@dataclasses.dataclass(frozen=True)
class RunPaths:
    """The paths of one run directory's artefacts (see the module docstring)."""

    root: str

    def _join(self, *parts: str) -> str:
        return os.path.join(self.root, *parts)

    @property
    def config(self) -> str:
        return self._join("config.yaml")

    @property
    def run_info(self) -> str:
        return self._join("run_info.json")

    @property
    def best_checkpoint(self) -> str:
        return self._join("checkpoints", "best.keras")

    @property
    def backup(self) -> str:
        return self._join("backup")

    @property
    def frozen_backup(self) -> str:
        """`train.freeze_epochs`' first phase backs up here (tfxmed.training.freezing)."""
        return self._join("backup_frozen")

    @property
    def frozen_weights(self) -> str:
        """The weights the frozen phase ended with, until the run finishes (tfxmed.training.freezing)."""
        return self._join("frozen_phase.weights.h5")

    def unfinished(self) -> bool:
        """Whether an interrupted training left a backup to resume from (either phase of `train.freeze_epochs`)."""
        return any(exists(path) for path in (self.backup, self.frozen_backup, self.frozen_weights))

    @property
    def history(self) -> str:
        return self._join("history.csv")

    @property
    def tensorboard(self) -> str:
        return self._join("tensorboard")

    @property
    def calibration(self) -> str:
        return self._join("calibration.json")

    @property
    def eval_dir(self) -> str:
        return self._join("eval")

    @property
    def metrics(self) -> str:
        return self._join("eval", "metrics.json")

    @property
    def explanations(self) -> str:
        return self._join("explanations")

    @property
    def saved_model(self) -> str:
        return self._join("saved_model")

    @property
    def report(self) -> str:
        return self._join("report.html")

    def artefacts(self) -> list[str]:
        """Everything training and the run commands write here (and nothing else)."""
        return [self.config, self.run_info, os.path.dirname(self.best_checkpoint), self.backup, self.frozen_backup,
                self.frozen_weights, self.history, self.calibration,
                self.tensorboard, self.eval_dir, self.explanations, self.saved_model, self.report]


@dataclasses.dataclass
class Run:
    """A finished (or checkpointed) training run, loaded: its config, dataset and best classifier."""

    paths: RunPaths
    config: Experiment
    manifest: dict
    data_dir: str
    model: object  # keras.Model; typed loosely so that importing this module does not load Keras

    @property
    def root(self) -> str:
        return self.paths.root


def load_run(run_dir: str) -> Run:
    """Loads a run directory written by `python -m tfxmed train`, with errors that say what is missing."""
    import keras  # deferred: reading paths and run info must not pay for TensorFlow

    from tfxmed.models import ModelSpec, declare_spec, model_spec
    from tfxmed.models import layers as _registered_layers  # noqa: F401  (registers the custom layers)

    paths = RunPaths(run_dir)
    if not exists(paths.config):
        raise FileNotFoundError(f"{paths.config} not found: is '{run_dir}' a tfxmed run directory?")
    config = load_config(paths.config)
    if not exists(paths.run_info):
        raise FileNotFoundError(f"{paths.run_info} not found: the run directory is incomplete")
    with open_file(paths.run_info) as stream:
        info = json.load(stream)
    data_dir = info["data_dir"]
    if not exists(paths.best_checkpoint):
        raise FileNotFoundError(f"{paths.best_checkpoint} not found: the run saved no best checkpoint yet")
    # Keras does not save the model's ModelSpec (the layers explainers read): it follows from the config,
    # unless the run recorded its own (an ensemble's, say: tfxmed.models.ensemble).
    recorded = info.get("model_spec")
    spec = ModelSpec.from_dict(recorded) if recorded else model_spec(config.model)
    model = declare_spec(keras.saving.load_model(paths.best_checkpoint), spec)
    return Run(paths, config, load_manifest(data_dir), data_dir, model)


def _what_it_makes(config: Experiment) -> dict:
    values = to_dict(config)
    values["runtime"] = {k: v for k, v in values["runtime"].items() if k not in RESUMABLE_RUNTIME_KEYS}
    return values


def claim_run_dir(run_dir: str, config: Experiment, overwrite: bool = False) -> str:
    """Decides what training may do with `run_dir`, before anything is written: "new" or "resume".

    - missing or empty: "new";
    - a tfxmed run of the same config (runtime placement aside) that did not finish: "resume";
    - a finished tfxmed run, or one of another config: refused, unless `overwrite`, which removes
      tfxmed's own artefacts there (nothing else) and gives "new";
    - a non-empty folder that is not a tfxmed run: refused, `overwrite` or not — tfxmed never deletes
      what it did not create.
    """
    paths = RunPaths(run_dir)
    if not is_dir(run_dir) or not list_dir(run_dir):
        if exists(run_dir) and not is_dir(run_dir):
            raise RunDirectoryError(f"runtime.run_dir='{run_dir}' is a file, not a folder")
        return "new"
    if not exists(paths.config):
        raise RunDirectoryError(
            f"runtime.run_dir='{run_dir}' is a non-empty folder that is not a tfxmed run (no config.yaml); "
            "choose an empty or new folder: tfxmed never writes into, or deletes, folders it did not create"
        )
    try:
        same = _what_it_makes(load_config(paths.config)) == _what_it_makes(config)
    except (ConfigError, OSError):
        same = False
    finished = not paths.unfinished() and exists(paths.best_checkpoint)
    if same and not finished:
        return "resume"
    if not overwrite:
        reason = "holds a finished run" if same else "holds a run of another configuration"
        raise RunDirectoryError(
            f"runtime.run_dir='{run_dir}' {reason}; pass --overwrite to replace it (its own artefacts only), "
            "or choose another runtime.run_dir"
        )
    for path in paths.artefacts():
        remove(path)
    return "new"


def package_versions() -> dict:
    versions = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return versions


def git_sha() -> str | None:
    """The SHA of the checkout this package runs from, or None outside git."""
    try:
        result = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=os.path.dirname(os.path.abspath(__file__)),
            capture_output=True, text=True, timeout=10, check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return result.stdout.strip() or None if result.returncode == 0 else None


def write_run_info(config: Experiment, run_dir: str, extra: dict | None = None) -> dict:
    """Writes `config.yaml` (resolved) and `run_info.json` into `run_dir`."""
    paths = RunPaths(run_dir)
    make_dirs(run_dir)
    save_config(config, paths.config)
    info = {
        "seed": config.runtime.seed,
        "git_sha": git_sha(),
        "versions": package_versions(),
        "command": sys.argv,
        "started": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        **(extra or {}),
    }
    write_json_atomic(info, paths.run_info)
    return info

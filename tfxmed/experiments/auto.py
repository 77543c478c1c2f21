"""A budgeted automatic recipe (the library behind `python -m tfxmed auto --data FILE.npz --budget-minutes M`).

1. **Search** (KerasTuner random search, `tfxmed.experiments.tuning`) over the small space of
   `configs/auto_search.yaml`: backbone width and depth, augmentation strength, learning rate, label
   smoothing, the consistency loss on/off. The first trial is the recipe itself (the file's
   `first_trial: defaults`), so the search keeps it unless a draw beats it on validation. Each trial
   is a whole training run scored by the validation AUC of the epoch it keeps (`train.monitor`).
   Trials start while the time spent so far, plus one more trial and the seed retraining (both
   estimated from the mean trial), fits in the budget; at least one trial runs.
2. **Seeds**: the best configuration is retrained with `seeds` seeds (`members/seed-<k>`).
3. **Ensemble**: the members' logits are averaged in one Keras model (`tfxmed.models.ensemble`),
   saved as this folder's best checkpoint, so the folder is a run directory like any other (report,
   export and explain work on it). Calibration is fitted on validation, as for any run.
4. **Test, once**: `evaluate_run(out, "test")`; a finished folder returns its recorded metrics.

Everything before the test is chosen on validation only. Re-running the same command resumes: the
search continues (an interrupted trial from its last epoch), finished members are kept, and an
interrupted member resumes.
"""

from __future__ import annotations

import glob
import json
import os

import numpy as np

from tfxmed.config import ConfigError
from tfxmed.errors import RunDirectoryError
from tfxmed.experiments.ensembling import save_ensemble_run
from tfxmed.experiments.tuning import load_search, make_tuner, trial_config, write_results
from tfxmed.runs import RunPaths
from tfxmed.storage import file_sha256, open_file, write_json_atomic

__all__ = ["auto", "DEFAULT_SEARCH", "MARKER"]

DEFAULT_SEARCH = os.path.join("configs", "auto_search.yaml")
MARKER = "auto.json"  # marks a folder as an auto run (what it was asked to do); resuming checks it
MAX_TRIALS = 100  # the budget ends the search long before this


def _read_json(path: str) -> dict | None:
    if not os.path.exists(path):
        return None
    with open_file(path) as stream:
        return json.load(stream)


def _claim(out: str, request: dict) -> None:
    """Refuses a folder that holds something else, or an auto run of other data or another search."""
    marker = _read_json(os.path.join(out, MARKER))
    if marker is None:
        if os.path.isdir(out) and os.listdir(out):
            raise RunDirectoryError(f"--out '{out}' is a non-empty folder that is not a tfxmed auto run; "
                                    "give a new folder (tfxmed never deletes folders it did not create)")
    elif {k: marker.get(k) for k in request} != request:
        raise RunDirectoryError(f"--out '{out}' holds an auto run of {marker}; this request is {request}. "
                                "Give a new folder, or repeat the original command to resume it")
    os.makedirs(out, exist_ok=True)
    write_json_atomic(request, os.path.join(out, MARKER))


def _trial_seconds(search_dir: str) -> list[float]:
    trials = glob.glob(os.path.join(search_dir, "trials", "*", "trial.json"))
    return [_read_json(path)["train_seconds"] for path in trials]


def _search(spec, strategy, search_dir: str, budget_seconds: float, seeds: int, verbose: int) -> dict:
    def spent() -> bool:
        seconds = _trial_seconds(search_dir)
        if not seconds:
            return False  # at least one trial
        mean = float(np.mean(seconds))
        return sum(seconds) + mean * (1 + seeds) > budget_seconds

    os.makedirs(search_dir, exist_ok=True)
    tuner = make_tuner(spec, "random", strategy, search_dir, MAX_TRIALS, spec.base.runtime.seed, verbose=verbose,
                       stop=spent)
    tuner.search()
    summary = write_results(tuner, search_dir)
    if summary["best"] is None:
        raise RuntimeError(f"no search trial completed in {search_dir}; see its trials/ folders")
    return summary, tuner


def _members(spec, tuner, best: dict, strategy, out: str, seeds: int, verbose: int) -> list[dict]:
    from tfxmed.training import train
    from tfxmed.training.callbacks import kept_scores

    trial = tuner.oracle.trials[best["trial"]]
    values = {name: trial.hyperparameters.get(name) for name in spec.space if trial.hyperparameters.is_active(name)}
    rows = []
    for seed in range(seeds):
        run_dir = os.path.join(out, "members", f"seed-{seed}")
        done = os.path.join(run_dir, "member.json")
        row = _read_json(done)
        paths = RunPaths(run_dir)
        if row is None and os.path.exists(paths.best_checkpoint) and not os.path.exists(paths.backup):
            # Finished, but stopped before member.json was written: its best checkpoint's record says it all.
            record = _read_json(paths.best_checkpoint + ".json")
            row = {"seed": seed, "run_dir": run_dir, "best_val_auc": kept_scores(record)[1], "train_seconds": None}
        elif row is None:
            config = trial_config(spec, values, run_dir, best["epochs"])
            config.runtime.seed = seed
            result = train(config, strategy, verbose=verbose)  # an interrupted member resumes here
            row = {"seed": seed, "run_dir": run_dir, "best_val_auc": result.best_val_auc,
                   "train_seconds": result.train_seconds}
        write_json_atomic(row, done)
        rows.append(row)
    return rows


def auto(data: str, budget_minutes: float, out: str, strategy, seeds: int = 3, search_file: str = DEFAULT_SEARCH,
         overrides: tuple[str, ...] = (), verbose: int = 0) -> dict:
    """Runs (or resumes) the whole recipe into `out`; returns the summary (see the module docstring)."""
    from tfxmed.evaluation import evaluate_run, headline

    if not os.path.isfile(data):
        raise FileNotFoundError(f"--data '{data}': no such file (a MedMNIST-style .npz is expected)")
    if budget_minutes <= 0 or seeds < 1:
        raise ConfigError(f"--budget-minutes must be > 0 and --seeds >= 1; got {budget_minutes} and {seeds}")
    _claim(out, {"data_sha256": file_sha256(data), "search": os.path.basename(search_file),
                 "overrides": list(overrides), "seeds": seeds})
    spec = load_search(search_file, (f"data.npz={data}", *overrides))
    summary_path = os.path.join(out, "auto_summary.json")
    finished = _read_json(summary_path)
    if finished is not None:
        return finished  # the test split was touched once already
    search, tuner = _search(spec, strategy, os.path.join(out, "search"), budget_minutes * 60.0, seeds, verbose)
    members = _members(spec, tuner, search["best"], strategy, out, seeds, verbose)
    config = save_ensemble_run([row["run_dir"] for row in members], out)
    metrics = evaluate_run(out, "test")  # the only time the test split is read
    summary = {
        "out": out, "budget_minutes": budget_minutes, "search_trials": search["trials"],
        "search_seconds": float(sum(_trial_seconds(os.path.join(out, "search")))),
        "best_trial": search["best"], "members": members, "config": config,
        "test": headline(metrics),
    }
    write_json_atomic(summary, summary_path)
    return summary

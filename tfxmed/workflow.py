"""The whole pipeline in one call, as the demo runs it: train → evaluate → export → report."""

from __future__ import annotations

import os
import time

import tensorflow as tf

from tfxmed.config import Experiment
from tfxmed.evaluation import OVERLAYS_FILE, evaluate_run, headline
from tfxmed.exporting import export_run
from tfxmed.reporting import build_report
from tfxmed.runs import RunPaths
from tfxmed.training import train

__all__ = ["QUICKSTART_CONFIG", "run_all"]

QUICKSTART_CONFIG = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "configs",
                                 "quickstart.yaml")


def run_all(config: Experiment, strategy: tf.distribute.Strategy) -> dict:
    """Trains `config`, evaluates it on test, exports the SavedModel and writes the report.

    Returns the headline figures, the time taken and the path of every artefact. The demo always
    starts over: a finished run of it in `runtime.run_dir` is replaced (tfxmed's artefacts only).
    """
    started = time.time()
    result = train(config, strategy, overwrite=True)
    trained = time.time()
    metrics = evaluate_run(result.run_dir)
    saved_model = export_run(result.run_dir)
    report = build_report(result.run_dir)
    paths = RunPaths(os.path.abspath(result.run_dir))
    data_dir = os.path.abspath(result.data_dir)
    return {
        **headline(metrics),
        "train_seconds": round(trained - started, 1),
        "total_seconds": round(time.time() - started, 1),
        "artefacts": {
            "tfrecords": data_dir,
            "manifest": os.path.join(data_dir, "manifest.json"),
            "tensorboard": paths.tensorboard,
            "best_checkpoint": paths.best_checkpoint,
            "saved_model": os.path.abspath(saved_model),
            "metrics": paths.metrics,
            "plots": [os.path.join(paths.eval_dir, "roc.png"), os.path.join(paths.eval_dir, "confusion_matrix.png")],
            "overlays": os.path.join(paths.eval_dir, OVERLAYS_FILE),
            "report": os.path.abspath(report),
        },
    }

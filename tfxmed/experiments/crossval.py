"""k-fold cross-validation behind `python -m tfxmed crossval`.

Trains one model per fold on the pooled train+val records (fold k validates, the others train; folds
are the records' stored patient-level folds, else a hash of the patient or source id), evaluates each
on the untouched test split, and writes mean ± sd of every metric to `crossval.md` / `crossval.json`
with per-fold artefacts in `fold-K/`. Finished folds are kept: re-running continues.
"""

from __future__ import annotations

import os

from tfxmed.config import Experiment
from tfxmed.evaluation import evaluate_run
from tfxmed.experiments.ablation import METRICS, run_ablation
from tfxmed.metrics.statistics import mean_sd
from tfxmed.storage import write_json_atomic, write_text_atomic
from tfxmed.training import train

__all__ = ["crossval", "summarize_folds", "markdown_table"]


def summarize_folds(per_fold: dict[str, dict]) -> dict:
    """Mean and sd (ddof=1) over folds of every metric in `METRICS`."""
    return {metric: mean_sd([row[metric] for row in per_fold.values()]) for metric in METRICS}


def markdown_table(summary: dict) -> str:
    return "| metric | mean ± sd over folds |\n|---|---|\n" + "".join(
        f"| {metric} | {value['mean']:.3f} ± {value['sd']:.3f} |\n" for metric, value in summary.items())


def crossval(config: Experiment, strategy, folds: int, out_dir: str) -> dict:
    """Runs (or resumes) `folds`-fold cross-validation; writes and returns the per-fold and summary table."""
    # Folds are "variants" of one config: the ablation runner gives resumption for free.
    variants = {f"fold-{k}": [f"data.cv_folds={folds}", f"data.cv_fold={k}"] for k in range(folds)}
    report = run_ablation(config, [config.runtime.seed], out_dir,
                          lambda variant: train(variant, strategy, verbose=0, overwrite=True),
                          lambda run_dir: evaluate_run(run_dir, "test"), variants, write_tables=False)
    per_fold = {name: report["runs"][name][0] for name in variants}
    summary = summarize_folds(per_fold)
    result = {"folds": folds, "per_fold": per_fold, "summary": summary,
              "table": os.path.join(out_dir, "crossval.md")}
    write_json_atomic(result, os.path.join(out_dir, "crossval.json"))
    write_text_atomic(markdown_table(summary), result["table"])
    return result

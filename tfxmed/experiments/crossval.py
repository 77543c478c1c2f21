"""k-fold cross-validation behind `python -m tfxmed crossval`.

Trains one model per fold on the pooled train+val records (fold k validates, the others train; folds
are the records' stored patient-level folds, else a hash of the patient or source id), evaluates each
on the untouched test split, and writes mean ± sd of every metric to `crossval.md` / `crossval.json`
with per-fold artefacts in `fold-K/`. Finished folds are kept: re-running continues.

With `variants` (name → config overrides), every variant is cross-validated on the same folds
(`VARIANT/fold-K/`) next to the config as given (`base`, the reference), and each variant is tested
against it per metric with the paired t-test and the Wilcoxon signed-rank test across folds: fold k of
both saw the same training and validation patients, so the folds pair.
"""

from __future__ import annotations

import os

from tfxmed.config import Experiment
from tfxmed.errors import Refusal
from tfxmed.evaluation import evaluate_run
from tfxmed.experiments.ablation import METRICS, run_ablation
from tfxmed.metrics.statistics import mean_sd, paired_tests
from tfxmed.storage import write_json_atomic, write_text_atomic
from tfxmed.training import train

__all__ = ["REFERENCE", "crossval", "summarize_folds", "markdown_table", "paired_across_folds"]

REFERENCE = "base"  # the config as given, against which variants are tested


def summarize_folds(per_fold: dict[str, dict]) -> dict:
    """Mean and sd (ddof=1) over folds of every metric in `METRICS` (None where a fold has none, e.g. ROAD on
    volumes)."""
    return {metric: {"mean": None, "sd": None} if any(row[metric] is None for row in per_fold.values())
            else mean_sd([row[metric] for row in per_fold.values()]) for metric in METRICS}


def paired_across_folds(per_fold: dict[str, dict], reference: dict[str, dict]) -> dict:
    """Per metric: paired t / Wilcoxon of a variant's fold values against the reference's, fold by fold."""
    tests = {}
    for metric in METRICS:
        values = [per_fold[fold][metric] for fold in reference], [reference[fold][metric] for fold in reference]
        tests[metric] = None if None in values[0] + values[1] else paired_tests(*values)
    return tests


def _p(value) -> str:
    return "–" if value is None else f"{value:.3g}"


def _mean_sd_text(value: dict) -> str:
    return "–" if value["mean"] is None else f"{value['mean']:.3f} ± {value['sd']:.3f}"


def markdown_table(summary: dict, variants: dict | None = None, paired: dict | None = None) -> str:
    """One column of mean ± sd per variant (just the summary without variants), with each variant's paired
    t-test and Wilcoxon p-values against the reference across folds."""
    if not variants:
        return "| metric | mean ± sd over folds |\n|---|---|\n" + "".join(
            f"| {metric} | {_mean_sd_text(value)} |\n" for metric, value in summary.items())
    names, others = list(variants), [name for name in variants if name in (paired or {})]
    header = ["metric", *(f"{name} (mean ± sd)" for name in names), *(f"{name} vs {names[0]}: t p / Wilcoxon p"
                                                                      for name in others)]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for metric in METRICS:
        cells = [_mean_sd_text(variants[name]["summary"][metric]) for name in names]
        cells += ["–" if paired[name][metric] is None else
                  f"{_p(paired[name][metric]['t_p_value'])} / {_p(paired[name][metric]['wilcoxon_p_value'])}"
                  for name in others]
        lines.append(f"| {metric} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _folds(config: Experiment, strategy, folds: int, out_dir: str, overrides: list[str] = ()) -> dict[str, dict]:
    """Per-fold metrics of `config` with `overrides`, each fold a resumable run in `out_dir/fold-K/`."""
    # Folds are "variants" of one config: the ablation runner gives resumption for free.
    variants = {f"fold-{k}": [*overrides, f"data.cv_folds={folds}", f"data.cv_fold={k}"] for k in range(folds)}
    report = run_ablation(config, [config.runtime.seed], out_dir,
                          lambda variant: train(variant, strategy, verbose=0, overwrite=True),
                          lambda run_dir: evaluate_run(run_dir, "test"), variants, write_tables=False)
    return {name: report["runs"][name][0] for name in variants}


def crossval(config: Experiment, strategy, folds: int, out_dir: str,
             variants: dict[str, list[str]] | None = None) -> dict:
    """Runs (or resumes) `folds`-fold cross-validation of `config` (and of each of `variants`: name →
    overrides); writes and returns the per-fold tables, the summaries and, with variants, the paired tests."""
    if not variants:
        per_fold = _folds(config, strategy, folds, out_dir)
        result = {"folds": folds, "per_fold": per_fold, "summary": summarize_folds(per_fold)}
        table = markdown_table(result["summary"])
    else:
        if REFERENCE in variants:
            raise Refusal(f"variant name '{REFERENCE}' is taken by the config as given; choose another")
        per_variant = {name: _folds(config, strategy, folds, os.path.join(out_dir, name), overrides)
                       for name, overrides in {REFERENCE: [], **variants}.items()}
        reference = per_variant[REFERENCE]
        result = {"folds": folds, "per_fold": reference, "summary": summarize_folds(reference),
                  "variants": {name: {"overrides": variants.get(name, []), "per_fold": rows,
                                      "summary": summarize_folds(rows)} for name, rows in per_variant.items()},
                  "paired": {name: paired_across_folds(rows, reference) for name, rows in per_variant.items()
                             if name != REFERENCE}}
        table = markdown_table(result["summary"], result["variants"], result["paired"])
    result["table"] = os.path.join(out_dir, "crossval.md")
    write_json_atomic(result, os.path.join(out_dir, "crossval.json"))
    write_text_atomic(table, result["table"])
    return result

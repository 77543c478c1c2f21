"""The ablation behind `python -m tfxmed ablate`: identical budgets, several seeds, one table.

Variants are config overrides applied on top of one experiment (default: backbone, + attention,
+ L_exp, + attention + L_exp). Every variant trains and is evaluated on the test split with the same
seeds (so the same synthetic data per seed); the table gives mean ± sd over seeds and, for every
metric, a paired t-test (scipy) of each variant against the first one across seeds.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence

import numpy as np

from tfxmed.config import ConfigError, Experiment, apply_overrides, from_dict, to_dict
from tfxmed.evaluation import evaluate_run
from tfxmed.metrics.statistics import mean_sd, paired_tests
from tfxmed.storage import write_json_atomic, write_text_atomic
from tfxmed.training import train

__all__ = ["DEFAULT_VARIANTS", "METRICS", "ablate", "parse_variants", "run_ablation", "summarize", "markdown_table"]

DEFAULT_VARIANTS = {
    "backbone": ["model.attention=false"],
    "+attention": ["model.attention=true"],
    "+L_exp": ["model.attention=false", "train.consistency.enabled=true"],
    "+attention+L_exp": ["model.attention=true", "train.consistency.enabled=true"],
}
# (name in the table, where it is in eval/metrics.json)
METRICS = {
    "ACC": ("classification", "accuracy"),
    "AUC": ("classification", "auc"),
    "IoU": ("localization", "iou_mean"),
    "pointing game": ("localization", "pointing_game"),
    "deletion": ("localization", "deletion_auc"),
    "insertion": ("localization", "insertion_auc"),
    "ROAD MoRF": ("localization", "road_morf"),
    "ROAD LeRF": ("localization", "road_lerf"),
}


def parse_variants(specs: Sequence[str]) -> dict[str, list[str]] | None:
    """`NAME:KEY=VALUE,KEY=VALUE` strings (`ablate`, `crossval`) → {name: overrides} (None for no specs)."""
    if not specs:
        return None
    variants = {}
    for spec in specs:
        name, separator, overrides = spec.partition(":")
        if not name or not separator:
            raise ConfigError(f"--variant '{spec}': expected NAME:KEY=VALUE[,KEY=VALUE...]")
        variants[name] = [item for item in overrides.split(",") if item]
    return variants


def ablate(config: Experiment, strategy, seeds: int, out_dir: str, variants=None) -> dict:
    """Trains and evaluates every variant for `seeds` seeds (from `runtime.seed`) under `strategy`."""
    return run_ablation(config, [config.runtime.seed + i for i in range(seeds)], out_dir,
                        lambda variant: train(variant, strategy, verbose=0, overwrite=True),
                        lambda run_dir: evaluate_run(run_dir, "test"), variants)


def _variant_config(base: Experiment, overrides: Sequence[str], seed: int, run_dir: str) -> Experiment:
    values = apply_overrides(to_dict(base), [*overrides, f"runtime.seed={seed}", f"runtime.run_dir={run_dir}"])
    return from_dict(values)


def run_ablation(
    base: Experiment,
    seeds: Sequence[int],
    out_dir: str,
    train: Callable[[Experiment], None],
    evaluate: Callable[[str], dict],
    variants: dict[str, list[str]] | None = None,
    write_tables: bool = True,
) -> dict:
    """Trains and evaluates every variant for every seed, then writes the table.

    Resumable: a run that finished training is not trained again, and one whose metrics are complete
    is not evaluated again (so new metrics can be added to an old ablation without retraining).
    """
    variants = variants or DEFAULT_VARIANTS
    results: dict[str, list[dict]] = {}
    for name, overrides in variants.items():
        results[name] = []
        for seed in seeds:
            run_dir = os.path.join(out_dir, name.replace("+", "plus_"), f"seed-{seed}")
            done, trained = os.path.join(run_dir, "ablation_metrics.json"), os.path.join(run_dir, "trained.json")
            row = {}
            if os.path.exists(done):
                with open(done, encoding="utf-8") as stream:
                    row = json.load(stream)
            if all(key in row for key in METRICS):
                results[name].append(row)
                continue
            if not (row or os.path.exists(trained)):
                train(_variant_config(base, overrides, seed, run_dir))
                os.makedirs(run_dir, exist_ok=True)
                write_json_atomic({"seed": seed}, trained)
            metrics = evaluate(run_dir)
            row = {"seed": seed, **{key: metrics[a].get(b) for key, (a, b) in METRICS.items()}}  # None: not defined
            write_json_atomic(row, done)
            results[name].append(row)
    summary = summarize(results)
    report = {"seeds": list(seeds), "variants": variants, "runs": results, "summary": summary}
    if write_tables:
        write_json_atomic(report, os.path.join(out_dir, "ablation.json"))
        write_text_atomic(markdown_table(summary), os.path.join(out_dir, "ablation.md"))
    return report


def summarize(results: dict[str, list[dict]]) -> dict:
    """Mean, sd and the paired t-test p-value against the first variant, per variant and metric."""
    names = list(results)
    baseline = {row["seed"]: row for row in results[names[0]]}
    summary = {}
    for name in names:
        summary[name] = {}
        for metric in METRICS:
            if any(row[metric] is None for row in results[name]):  # e.g. ROAD on volumes: not computed
                summary[name][metric] = {"mean": None, "sd": None, "p_vs_" + names[0]: None}
                continue
            values = np.array([row[metric] for row in results[name]], float)
            paired = np.array([baseline[row["seed"]][metric] for row in results[name]], float)  # nan: undefined
            p_value = None
            if name != names[0] and len(values) > 1 and np.any(values != paired):
                p_value = paired_tests(values, paired)["t_p_value"]
            summary[name][metric] = {
                **mean_sd(values),
                "p_vs_" + names[0]: None if p_value is None or np.isnan(p_value) else p_value,
            }
    return summary


def markdown_table(summary: dict) -> str:
    names = list(summary)
    lines = ["| variant | " + " | ".join(METRICS) + " |", "|---" * (len(METRICS) + 1) + "|"]
    for name in names:
        cells = []
        for metric in METRICS:
            entry = summary[name][metric]
            p_value = entry[f"p_vs_{names[0]}"]
            p_text = f" (p={p_value:.3f})" if p_value is not None else ""
            cells.append("–" if entry["mean"] is None else f"{entry['mean']:.3f} ± {entry['sd']:.3f}{p_text}")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines.append("")
    lines.append(f"mean ± sd over seeds; p: paired t-test against `{names[0]}` across seeds. IoU, pointing game, "
                 "deletion, insertion and ROAD are of each run's default explanation (`explain.method`; "
                 "deletion, ROAD MoRF: lower is better).")
    return "\n".join(lines) + "\n"

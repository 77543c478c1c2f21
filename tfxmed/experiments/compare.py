"""Runs compared as the papers compare them (the library behind `python -m tfxmed compare`).

Every run is scored on the same split (default: test) with its own preprocessing and calibration,
then each run is tested against the first one (the reference) on the very same images:

- **DeLong's test** of AUC (DeLong et al., 1988): the positive class for binary models, each class
  (one-vs-rest) or label for the others;
- **McNemar's test** of accuracy on the paired decisions (single-label models; exact below 25
  discordant pairs), each run deciding as its `classification` report does;
- p-values are also given **Holm-adjusted** over the runs compared with the reference, since a table
  of several comparisons invites reading the smallest p-value.

Runs can also be given in **groups** (e.g. the seeds or folds of two recipes, paired by position):
each group gets mean ± sd of AUC and ACC, and every group is compared with the first by a paired
t-test and a Wilcoxon signed-rank test across its members.

Runs scored on different images are refused: the labels of the split must match image for image.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np

from tfxmed.metrics.statistics import delong_test, mcnemar_test, mean_sd, paired_tests

__all__ = ["compare", "holm", "markdown", "scores_of"]


def scores_of(run_dir: str, split: str = "test") -> dict:
    """A run's labels, calibrated probabilities and decisions on `split` (as `evaluate_run` scores them)."""
    from tfxmed import calibration as calibration_lib
    from tfxmed.evaluation import collect_split, metric_labels
    from tfxmed.metrics.classification import classification_report
    from tfxmed.runs import load_run

    run = load_run(run_dir)
    if split not in run.manifest["splits"]:
        raise ValueError(f"run '{run_dir}' has no '{split}' split (its data has {sorted(run.manifest['splits'])})")
    data = collect_split(run.data_dir, run.manifest, run.config, split)
    calibration = calibration_lib.run_calibration(
        run, lambda: collect_split(run.data_dir, run.manifest, run.config, "val"))
    multi_label, names = run.manifest["multi_label"], run.manifest["class_names"]
    probabilities = calibration_lib.predict(run.model, data["image"], calibration, multi_label)
    labels = metric_labels(data, multi_label)
    report = classification_report(labels, probabilities, names, multi_label=multi_label)
    decisions = probabilities.argmax(-1) if not multi_label else None
    return {"run": run_dir, "labels": labels, "probabilities": probabilities, "class_names": names,
            "multi_label": multi_label, "auc": report["auc"], "accuracy": report.get("accuracy"),
            "correct": None if decisions is None else decisions == labels}


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm–Bonferroni adjusted p-values (step-down, monotone), in the input order."""
    p = np.asarray(p_values, float)
    order = np.argsort(p)
    adjusted = np.empty_like(p)
    running = 0.0
    for rank, index in enumerate(order):
        running = max(running, min(1.0, (len(p) - rank) * p[index]))
        adjusted[index] = running
    return adjusted.tolist()


def _columns(scored: dict) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """(class name, 0/1 targets, scores) per class DeLong is run on: the positive class alone for binary."""
    labels, probabilities, names = scored["labels"], scored["probabilities"], scored["class_names"]
    if scored["multi_label"]:
        return [(names[k], labels[:, k], probabilities[:, k]) for k in range(len(names))]
    classes = [1] if len(names) == 2 else range(len(names))
    return [(names[k], (labels == k).astype(int), probabilities[:, k]) for k in classes]


def _against(reference: dict, other: dict) -> dict:
    row = {"run": other["run"], "delong": {}}
    for (name, targets, reference_scores), (_, _, scores) in zip(_columns(reference), _columns(other)):
        if targets.min() == targets.max():
            row["delong"][name] = None  # one class only: AUC undefined
            continue
        test = delong_test(targets, scores, reference_scores)
        row["delong"][name] = {"auc": test["auc_a"], "reference_auc": test["auc_b"],
                               "difference": test["auc_a"] - test["auc_b"], "z": test["z"], "p_value": test["p_value"]}
    row["mcnemar"] = (None if other["correct"] is None
                      else mcnemar_test(other["correct"], reference["correct"]))
    return row


def _check_same_split(scored: list[dict]) -> None:
    reference = scored[0]
    for other in scored[1:]:
        same = (other["labels"].shape == reference["labels"].shape
                and np.array_equal(other["labels"], reference["labels"])
                and other["class_names"] == reference["class_names"])
        if not same:
            raise ValueError(f"runs '{reference['run']}' and '{other['run']}' were not scored on the same images "
                             f"(labels or classes differ: {len(reference['labels'])} vs {len(other['labels'])} "
                             "images); compare runs of one dataset's split")


def _holm_columns(rows: list[dict]) -> None:
    """Adds `p_holm` to every DeLong class and McNemar entry, adjusted over the runs (per class)."""
    entries: dict[str, list[dict]] = {}
    for row in rows:
        for name, test in row["delong"].items():
            if test is not None:
                entries.setdefault(f"delong:{name}", []).append(test)
        if row["mcnemar"] is not None:
            entries.setdefault("mcnemar", []).append(row["mcnemar"])
    for tests in entries.values():
        for test, adjusted in zip(tests, holm([t["p_value"] for t in tests])):
            test["p_holm"] = adjusted


def _groups(groups: dict[str, list[str]], scored: dict[str, dict]) -> dict:
    names = list(groups)
    summary = {"groups": {}, "paired": {}}
    for name in names:
        members = [scored[run] for run in groups[name]]
        summary["groups"][name] = {"runs": groups[name],
                                   "auc": mean_sd([m["auc"] for m in members]),
                                   "accuracy": (mean_sd([m["accuracy"] for m in members])
                                                if all(m["accuracy"] is not None for m in members) else None)}
    first = names[0]
    for name in names[1:]:
        if len(groups[name]) != len(groups[first]):
            raise ValueError(f"group '{name}' has {len(groups[name])} runs and '{first}' {len(groups[first])}; "
                             "groups are paired by position (seed or fold), so they must be the same size")
        pairs = {}
        for metric in ("auc", "accuracy"):
            a = [scored[run][metric] for run in groups[name]]
            b = [scored[run][metric] for run in groups[first]]
            pairs[metric] = paired_tests(a, b) if len(a) > 1 and None not in a + b else None
        summary["paired"][name] = pairs
    return summary


def compare(runs: Sequence[str], split: str = "test", groups: dict[str, list[str]] | None = None,
            scorer=scores_of, out: str | None = None) -> dict:
    """Scores `runs` (and every run of `groups`) on `split` and tests each against the first; JSON-ready.
    `out`: a folder to write compare.json and compare.md into."""
    groups = groups or {}
    ordered = list(dict.fromkeys([*runs, *(run for members in groups.values() for run in members)]))
    if len(ordered) < 2:
        raise ValueError(f"compare needs at least two runs, got {len(ordered)}")
    scored = {run: scorer(run, split) for run in ordered}
    _check_same_split(list(scored.values()))
    reference = scored[ordered[0]]
    rows = [_against(reference, scored[run]) for run in ordered[1:]]
    _holm_columns(rows)
    result = {
        "split": split, "images": int(len(reference["labels"])), "reference": ordered[0],
        "runs": {run: {"auc": s["auc"], "accuracy": s["accuracy"]} for run, s in scored.items()},
        "against_reference": rows,
    }
    if groups:
        result.update(_groups(groups, scored))
    if out:
        from tfxmed.storage import make_dirs, write_json_atomic, write_text_atomic

        make_dirs(out)
        write_json_atomic(result, os.path.join(out, "compare.json"))
        write_text_atomic(markdown(result), os.path.join(out, "compare.md"))
    return result


def _p(value) -> str:
    return "–" if value is None else f"{value:.3g}"


def _mean_sd_text(value: dict | None) -> str:
    return "–" if value is None else f"{value['mean']:.4f} ± {value['sd']:.4f}"


def _labels(runs: Sequence[str]) -> dict[str, str]:
    """Each run's shortest trailing path that no other run shares (seed-0 twice → a/seed-0, b/seed-0)."""
    labels = {}
    for run in runs:
        parts = os.path.normpath(run).split(os.sep)
        for depth in range(1, len(parts) + 1):
            label = "/".join(parts[-depth:])
            if sum(os.path.normpath(other).endswith(os.sep + label) or os.path.normpath(other) == label
                   for other in runs) == 1:
                break
        labels[run] = label
    return labels


def markdown(result: dict) -> str:
    """The comparison as Markdown tables (runs vs the reference; groups, when given)."""
    name = _labels(list(result["runs"])).__getitem__
    lines = [f"Compared on the `{result['split']}` split ({result['images']} images); reference: "
             f"`{result['reference']}`. p (Holm): adjusted over the runs compared with the reference.", "",
             "| run | AUC | ACC | ΔAUC vs reference | DeLong p | p (Holm) | McNemar p | p (Holm) |",
             "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    figures = result["runs"]
    accuracy = figures[result["reference"]]["accuracy"]
    lines.append(f"| {name(result['reference'])} (reference) | {figures[result['reference']]['auc']:.4f} | "
                 f"{_p(accuracy)} | | | | | |")
    for row in result["against_reference"]:
        for index, (cls, test) in enumerate(row["delong"].items()):
            first = index == 0
            run = name(row["run"]) + ("" if len(row["delong"]) == 1 else f" · {cls}")
            auc = f"{test['auc']:.4f}" if test else "–"
            mcnemar = row["mcnemar"] if first else None
            lines.append(
                f"| {run} | {auc} | {_p(figures[row['run']]['accuracy']) if first else ''} | "
                f"{'' if not test else format(test['difference'], '+.4f')} | {_p(test and test['p_value'])} | "
                f"{_p(test and test['p_holm'])} | {_p(mcnemar and mcnemar['p_value'])} | "
                f"{_p(mcnemar and mcnemar['p_holm'])} |")
    if "groups" in result:
        lines += ["", "| group | runs | AUC mean ± sd | ACC mean ± sd | paired t p (AUC) | Wilcoxon p (AUC) | "
                  "paired t p (ACC) |", "| --- | --- | --- | --- | --- | --- | --- |"]
        for group, summary in result["groups"].items():
            paired = result["paired"].get(group, {})
            auc, acc = paired.get("auc") or {}, paired.get("accuracy") or {}
            accuracy = summary["accuracy"]
            lines.append(f"| {group} | {len(summary['runs'])} | {_mean_sd_text(summary['auc'])}"
                         f" | {_mean_sd_text(accuracy)} | "
                         f"{_p(auc.get('t_p_value'))} | {_p(auc.get('wilcoxon_p_value'))} | "
                         f"{_p(acc.get('t_p_value'))} |")
    return "\n".join(lines) + "\n"

"""Which epoch would each checkpoint rule have kept? A validation-only look at finished runs' history.csv.

    python scripts/compare_monitors.py runs/benchmark_medmnist/pneumoniamnist/seed-* runs/other/seed-*

For every run it finds the epoch each rule keeps: `val_auc` (the highest validation AUC), `val_loss` (the
lowest validation loss: `train.monitor`'s two values) and `last` (no choice). Runs are grouped by their
parent folder (e.g. the seeds of one benchmark); each group gets, per rule, the mean ± sd over its runs
of validation ACC at argmax, AUC and loss at the kept epoch, and how many kept epochs had validation ACC
below `--low-acc`. Reads nothing but history.csv: no test split, no model. Prints JSON.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from tfxmed.config_choices import MONITOR_MODES  # noqa: E402
from tfxmed.metrics.statistics import mean_sd  # noqa: E402


def _keeps(monitor: str, mode: str):
    """The rule `train.monitor: monitor` follows: the epoch with the highest (max) or lowest (min) value."""
    pick = max if mode == "max" else min
    return lambda rows: pick(rows, key=lambda row: row[monitor])


RULES = {**{monitor: _keeps(monitor, mode) for monitor, mode in MONITOR_MODES.items()}, "last": lambda rows: rows[-1]}
COLUMNS = ("epoch", "val_accuracy", *MONITOR_MODES)


def read_history(run_dir: str) -> list[dict]:
    """The epochs of `run_dir`/history.csv with the columns the rules need, as numbers."""
    path = os.path.join(run_dir, "history.csv")
    if not os.path.isfile(path):
        raise SystemExit(f"{path}: no such file (is {run_dir} a tfxmed run directory?)")
    with open(path, encoding="utf-8", newline="") as stream:
        rows = list(csv.DictReader(stream))
    missing = [column for column in COLUMNS if rows and column not in rows[0]]
    if not rows or missing:
        raise SystemExit(f"{path}: expected epochs with columns {', '.join(COLUMNS)}; missing {missing or 'rows'}")
    return [{column: float(row[column]) for column in COLUMNS} for row in rows]


def compare(run_dirs: list[str], low_acc: float) -> dict:
    """Per parent folder and rule: the kept epochs and the mean ± sd of their validation ACC and AUC."""
    groups: dict[str, dict[str, list[dict]]] = {}
    for run_dir in run_dirs:
        rows = read_history(run_dir)
        group = groups.setdefault(os.path.dirname(os.path.normpath(run_dir)), {rule: [] for rule in RULES})
        for rule, keep in RULES.items():
            group[rule].append(keep(rows))
    return {
        name: {rule: {"runs": len(kept), "epochs": [int(row["epoch"]) for row in kept],
                      "val_accuracy": mean_sd([row["val_accuracy"] for row in kept]),
                      "val_auc": mean_sd([row["val_auc"] for row in kept]),
                      "val_loss": mean_sd([row["val_loss"] for row in kept]),
                      "low_accuracy_runs": sum(row["val_accuracy"] < low_acc for row in kept)}
               for rule, kept in rules.items()}
        for name, rules in groups.items()
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="+", help="run directories (each with a history.csv)")
    parser.add_argument("--low-acc", type=float, default=0.87,
                        help="count kept epochs whose validation ACC at argmax is below this")
    args = parser.parse_args()
    print(json.dumps(compare(args.runs, args.low_acc), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())

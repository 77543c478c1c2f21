"""`python -m tfxmed.crossval --config ... --folds 5 [--out runs/crossval] [--set ...]`.

Trains one model per fold on the pooled train+val records (fold k validates, the others train; folds
are the records' stored patient-level folds, else a hash of the patient or source id), evaluates each
on the untouched test split, and writes mean ± sd of every metric to `crossval.md` / `crossval.json`
with per-fold artefacts in `fold-K/`. Finished folds are kept: re-running continues.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Sequence

import numpy as np

from tfxmed.cli import experiment_parser, parse_experiment, strategy_for


def main(argv: Sequence[str] | None = None) -> int:
    parser = experiment_parser("python -m tfxmed.crossval", __doc__)
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--out", default="runs/crossval")
    args = parser.parse_args(argv)
    config = parse_experiment(args)
    strategy = strategy_for(config)
    from tfxmed.evaluation import evaluate_run
    from tfxmed.training import train
    from tfxmed.training.ablation import METRICS, run_ablation
    from tfrecords_tools.writer import write_json_atomic

    # Folds are "variants" of one config: the ablation runner gives resumption and mean ± sd for free.
    variants = {f"fold-{k}": [f"data.cv_folds={args.folds}", f"data.cv_fold={k}"] for k in range(args.folds)}
    report = run_ablation(config, [config.runtime.seed], args.out, lambda variant: train(variant, strategy, verbose=0),
                          lambda run_dir: evaluate_run(run_dir, "test"), variants, write_tables=False)
    per_fold = {name: report["runs"][name][0] for name in variants}
    values = {metric: np.array([row[metric] for row in per_fold.values()], float) for metric in METRICS}
    summary = {metric: {"mean": float(v.mean()), "sd": float(v.std(ddof=1)) if len(v) > 1 else 0.0}
               for metric, v in values.items()}
    result = {"folds": args.folds, "per_fold": per_fold, "summary": summary}
    write_json_atomic(result, os.path.join(args.out, "crossval.json"))
    table = "| metric | mean ± sd over folds |\n|---|---|\n" + "".join(
        f"| {metric} | {value['mean']:.3f} ± {value['sd']:.3f} |\n" for metric, value in summary.items())
    with open(os.path.join(args.out, "crossval.md"), "w", encoding="utf-8") as stream:
        stream.write(table)
    print(table, file=sys.stderr)
    print(json.dumps({"table": os.path.join(args.out, "crossval.md"), "summary": summary}))
    return 0


if __name__ == "__main__":
    sys.exit(main())

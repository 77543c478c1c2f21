"""Cross-validate: `python -m tfxmed crossval --config ... --folds 5 [--out runs/crossval] [--set ...]`.

Trains one model per patient-level fold of the pooled train+val records, evaluates each on the
untouched test split, and writes mean ± sd of every metric to `crossval.md` / `crossval.json`.
Finished folds are kept: re-running continues.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from tfxmed.commands.common import emit, experiment_parser, fail, parse_experiment, refusals, strategy_for


def main(argv: Sequence[str] | None = None, prog: str = "python -m tfxmed crossval") -> int:
    parser = experiment_parser(prog, __doc__)
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--out", default="runs/crossval")
    args = parser.parse_args(argv)
    if args.folds < 2:
        fail(f"--folds must be at least 2; got {args.folds}")
    config = parse_experiment(args)
    strategy = strategy_for(config)
    from tfxmed.experiments.crossval import crossval, markdown_table

    with refusals():
        result = crossval(config, strategy, args.folds, args.out)
    print(markdown_table(result["summary"]), file=sys.stderr)
    return emit({"table": result["table"], "summary": result["summary"]})

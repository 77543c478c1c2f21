"""Cross-validate: `python -m tfxmed crossval --config ... --folds 5 [--variant NAME:KEY=VALUE,...] [--out DIR]`.

Trains one model per patient-level fold of the pooled train+val records, evaluates each on the
untouched test split, and writes mean ± sd of every metric to `crossval.md` / `crossval.json`; each
`--variant` is cross-validated on the same folds and tested against the config as given (paired t /
Wilcoxon across folds). Finished folds are kept: re-running continues.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from tfxmed.commands.common import emit, experiment_parser, fail, parse_experiment, refusals, strategy_for


def main(argv: Sequence[str] | None = None, prog: str = "python -m tfxmed crossval") -> int:
    parser = experiment_parser(prog, __doc__)
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--out", default="runs/crossval")
    parser.add_argument("--variant", action="append", default=[], metavar="NAME:KEY=VALUE,KEY=VALUE",
                        help="also cross-validate this variant on the same folds, tested against the config as given")
    args = parser.parse_args(argv)
    if args.folds < 2:
        fail(f"--folds must be at least 2; got {args.folds}")
    config = parse_experiment(args)
    strategy = strategy_for(config)
    from tfxmed.experiments.ablation import parse_variants
    from tfxmed.experiments.crossval import crossval, markdown_table

    with refusals():
        variants = parse_variants(args.variant) if args.variant else None
        result = crossval(config, strategy, args.folds, args.out, variants)
    print(markdown_table(result["summary"], result.get("variants"), result.get("paired")), file=sys.stderr)
    return emit({key: result[key] for key in ("table", "summary", "paired") if key in result})

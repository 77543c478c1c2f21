"""Ablate: `python -m tfxmed ablate --config configs/ablation.yaml --seeds 3 [--out runs/ablation] [--variant ...]`.

Trains backbone / + attention / + L_exp / + attention + L_exp (or the `--variant`s given) with
identical budgets for each seed, evaluates each on the test split and writes `ablation.md` and
`ablation.json` into `--out`. Finished runs are kept: re-running the command continues.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from tfxmed.commands.common import emit, experiment_parser, parse_experiment, refusals, strategy_for


def main(argv: Sequence[str] | None = None, prog: str = "python -m tfxmed ablate") -> int:
    parser = experiment_parser(prog, __doc__)
    parser.add_argument("--seeds", type=int, default=3, help="number of seeds (runtime.seed, +1, ...)")
    parser.add_argument("--out", default="runs/ablation")
    parser.add_argument(
        "--variant", action="append", default=[], metavar="NAME:KEY=VALUE,KEY=VALUE",
        help="replace the default variants (repeatable; the first is the baseline), e.g. "
             "--variant plain:train.consistency.enabled=false --variant naive:train.consistency.enabled=true,...",
    )
    args = parser.parse_args(argv)
    config = parse_experiment(args)
    from tfxmed.experiments.ablation import ablate, markdown_table, parse_variants

    with refusals():
        variants = parse_variants(args.variant)
    strategy = strategy_for(config)
    with refusals():
        report = ablate(config, strategy, args.seeds, args.out, variants)
    print(markdown_table(report["summary"]), file=sys.stderr)
    return emit({"table": f"{args.out}/ablation.md", "json": f"{args.out}/ablation.json",
                 "summary": report["summary"]})

"""`python -m tfxmed.ablate --config configs/ablation.yaml --seeds 3 [--out runs/ablation] [--set ...]`.

Trains backbone / + attention / + L_exp / + attention + L_exp (or the `--variant`s given) with
identical budgets for each seed, evaluates each on the test split and writes `ablation.md` and
`ablation.json` into `--out`.
Finished runs are kept: re-running the command continues an interrupted ablation.
"""

from __future__ import annotations

import json
import sys
from typing import Sequence

from tfxmed.cli import experiment_parser, parse_experiment, strategy_for


def main(argv: Sequence[str] | None = None) -> int:
    parser = experiment_parser("python -m tfxmed.ablate", __doc__)
    parser.add_argument("--seeds", type=int, default=3, help="number of seeds (42, 43, ...)")
    parser.add_argument("--out", default="runs/ablation")
    parser.add_argument(
        "--variant", action="append", default=[], metavar="NAME:KEY=VALUE,KEY=VALUE",
        help="replace the default variants (repeatable; the first is the baseline), e.g. "
             "--variant plain:train.consistency.enabled=false --variant naive:train.consistency.enabled=true,...",
    )
    args = parser.parse_args(argv)
    variants = None
    if args.variant:
        variants = {}
        for spec in args.variant:
            name, _, overrides = spec.partition(":")
            variants[name] = [item for item in overrides.split(",") if item]
    config = parse_experiment(args)
    strategy = strategy_for(config)
    from tfxmed.evaluation import evaluate_run
    from tfxmed.training import train
    from tfxmed.training.ablation import run_ablation

    seeds = [config.runtime.seed + i for i in range(args.seeds)]
    report = run_ablation(config, seeds, args.out, lambda variant: train(variant, strategy, verbose=0),
                          lambda run_dir: evaluate_run(run_dir, "test"), variants)
    print(open(f"{args.out}/ablation.md", encoding="utf-8").read(), file=sys.stderr)
    print(json.dumps({"table": f"{args.out}/ablation.md", "json": f"{args.out}/ablation.json",
                      "summary": report["summary"]}))
    return 0


if __name__ == "__main__":
    sys.exit(main())

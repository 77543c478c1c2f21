"""`python -m tfxmed.train --config configs/quickstart.yaml --strategy=cpu [--set key=value ...]`."""

from __future__ import annotations

import json
import sys
from typing import Sequence

from tfxmed.cli import experiment_parser, parse_experiment, strategy_for


def main(argv: Sequence[str] | None = None) -> int:
    args = experiment_parser("python -m tfxmed.train", __doc__).parse_args(argv)
    config = parse_experiment(args)
    strategy = strategy_for(config)
    from tfxmed.training import train

    result = train(config, strategy)
    print(json.dumps({"run_dir": result.run_dir, "best_checkpoint": result.best_checkpoint,
                      "best_val_auc": result.best_val_auc, "epochs": result.epochs_run}))
    return 0


if __name__ == "__main__":
    sys.exit(main())

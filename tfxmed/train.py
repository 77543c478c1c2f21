"""`python -m tfxmed.train --config configs/quickstart.yaml --strategy=cpu [--set key=value ...]`."""

from __future__ import annotations

import json
import sys
from typing import Sequence

from tfxmed.cli import experiment_parser, fail, parse_experiment


def main(argv: Sequence[str] | None = None) -> int:
    args = experiment_parser("python -m tfxmed.train", __doc__).parse_args(argv)
    config = parse_experiment(args)
    from tfxmed import distribute

    try:
        distribute.configure_devices(config.runtime.cpu_devices)
        strategy = distribute.make_strategy(config.runtime.strategy, config.runtime.tpu)
    except distribute.StrategyError as error:
        fail(str(error))
    from tfxmed.training import train

    result = train(config, strategy)
    print(json.dumps({"run_dir": result.run_dir, "best_checkpoint": result.best_checkpoint,
                      "best_val_auc": result.best_val_auc, "epochs": result.epochs_run}))
    return 0


if __name__ == "__main__":
    sys.exit(main())

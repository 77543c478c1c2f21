"""`python -m tfxmed.tune --config configs/tune_medmnist.yaml --tuner random|grid|hyperband --max-trials N`.

Searches the space declared in the YAML file (see `tfxmed.tuning`) with KerasTuner; every trial is a full
training run under `--strategy`, scored by its best validation AUC. Writes `<out>/results.csv`,
`results.md`, `best_config.yaml` (ready for `python -m tfxmed.train --config`), per-trial runs under
`trials/` and TensorBoard HParams logs under `tensorboard/`. Re-running the same command resumes the
search: finished trials are kept, an interrupted one continues from its last epoch.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Sequence

from tfxmed.cli import fail, strategy_for
from tfxmed.config import ConfigError


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tfxmed.tune", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", required=True, help="search file (experiment + space), e.g. configs/tune_medmnist.yaml")
    parser.add_argument("--tuner", default="random", help="random | grid | hyperband")
    parser.add_argument("--max-trials", type=int, default=10, help="trials in all (random, grid); hyperband ignores it")
    parser.add_argument("--strategy", default=None, help="cpu | gpu | mirrored | multiworker | tpu")
    parser.add_argument("--out", default=None, help="search folder (default runs/tune-<search file stem>-<tuner>)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a base experiment value, e.g. --set data.npz=PATH (repeatable)")
    parser.add_argument("--verbose", type=int, default=0, help="Keras fit verbosity inside trials")
    args = parser.parse_args(argv)
    from tfxmed.tuning import load_search, make_tuner, write_results

    overrides = [*args.overrides, *([f"runtime.strategy={args.strategy}"] if args.strategy else [])]
    try:
        spec = load_search(args.config, tuple(overrides))
    except (ConfigError, FileNotFoundError) as error:
        fail(f"config error: {error}")
    stem = os.path.splitext(os.path.basename(args.config))[0]
    out_dir = args.out or os.path.join("runs", f"{stem}-{args.tuner}")
    os.makedirs(out_dir, exist_ok=True)
    strategy = strategy_for(spec.base)
    try:
        tuner = make_tuner(spec, args.tuner, strategy, out_dir, args.max_trials, spec.base.runtime.seed,
                           verbose=args.verbose)
    except ConfigError as error:
        fail(f"config error: {error}")
    tuner.search()
    summary = write_results(tuner, out_dir)
    print(json.dumps({"out": out_dir, **summary}, default=str))
    return 0 if summary["best"] is not None else 1


if __name__ == "__main__":
    sys.exit(main())

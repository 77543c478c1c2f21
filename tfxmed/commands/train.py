"""Train a classifier: `python -m tfxmed train --config configs/quickstart.yaml [--strategy cpu] [--set k=v]`.

Converts the configured dataset on first use, trains under the chosen tf.distribute strategy, and
writes the run directory (config, checkpoints, history, TensorBoard). A killed run resumes.
"""

from __future__ import annotations

from collections.abc import Sequence

from tfxmed.commands.common import emit, experiment_parser, parse_experiment, refusals, strategy_for


def main(argv: Sequence[str] | None = None, prog: str = "python -m tfxmed train") -> int:
    parser = experiment_parser(prog, __doc__)
    parser.add_argument("--overwrite", action="store_true",
                        help="replace a finished run (or a run of another config) in runtime.run_dir")
    args = parser.parse_args(argv)
    config = parse_experiment(args)
    strategy = strategy_for(config)
    from tfxmed.training import train

    with refusals():
        result = train(config, strategy, overwrite=args.overwrite)
    return emit({"run_dir": result.run_dir, "best_checkpoint": result.best_checkpoint,
                 "best_val_auc": result.best_val_auc, "epochs": result.epochs_run})

"""Search hyperparameters: `python -m tfxmed tune --config configs/tune_medmnist.yaml --tuner random --max-trials N`.

Searches the space declared in the YAML file (see `tfxmed.experiments.tuning`) with KerasTuner; every
trial is a full training run under `--strategy`, scored by the validation AUC of its kept epoch. Writes
`<out>/results.csv`, `results.md`, `best_config.yaml` (ready for `python -m tfxmed train --config`),
per-trial runs under `trials/` and TensorBoard HParams logs under `tensorboard/`. Re-running the same
command resumes the search: finished trials are kept, an interrupted one continues from its last epoch.
"""

from __future__ import annotations

from collections.abc import Sequence

from tfxmed.commands.common import emit, experiment_parser, fail, overrides_of, refusals, strategy_for


def main(argv: Sequence[str] | None = None, prog: str = "python -m tfxmed tune") -> int:
    parser = experiment_parser(prog, __doc__, config_required=True)
    parser.add_argument("--tuner", default="random", help="random | grid | hyperband")
    parser.add_argument("--max-trials", type=int, default=10, help="trials in all (random, grid); hyperband ignores it")
    parser.add_argument("--out", default=None, help="search folder (default runs/<search file stem>-<tuner>)")
    parser.add_argument("--verbose", type=int, default=0, help="Keras fit verbosity inside trials")
    args = parser.parse_args(argv)
    from tfxmed.experiments.tuning import TUNERS, default_out_dir, load_search, search

    if args.tuner not in TUNERS:
        fail(f"--tuner must be one of {', '.join(TUNERS)}; got '{args.tuner}'")
    with refusals():
        spec = load_search(args.config, tuple(overrides_of(args)))
    strategy = strategy_for(spec.base)
    with refusals():
        summary = search(spec, args.tuner, strategy, args.out or default_out_dir(args.config, args.tuner),
                         args.max_trials, args.verbose)
    emit(summary)
    return 0 if summary["best"] is not None else 1

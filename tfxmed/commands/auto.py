"""Budgeted automatic recipe: `python -m tfxmed auto --data FILE.npz --budget-minutes M [--seeds 3] --out DIR`.

Searches `configs/auto_search.yaml`'s space with KerasTuner within the budget (validation AUC decides),
retrains the best configuration with several seeds, averages them into one ensemble model and
evaluates it on the test split once. DIR is a run directory like any other (`report`, `export`,
`explain` work on it) plus `search/` and `members/`. Re-running the same command resumes.
"""

from __future__ import annotations

from collections.abc import Sequence

from tfxmed.commands.common import emit, experiment_parser, overrides_of, refusals, strategy_for


def main(argv: Sequence[str] | None = None, prog: str = "python -m tfxmed auto") -> int:
    parser = experiment_parser(prog, __doc__)
    parser.add_argument("--data", required=True, help="MedMNIST-style .npz ({train,val,test}_{images,labels})")
    parser.add_argument("--budget-minutes", type=float, required=True, help="time for the search and the seeds")
    parser.add_argument("--seeds", type=int, default=3, help="seeds the best configuration is retrained with")
    parser.add_argument("--out", default="runs/auto", help="the run directory to write (or resume)")
    parser.add_argument("--verbose", type=int, default=0, help="Keras fit verbosity")
    args = parser.parse_args(argv)
    from tfxmed.experiments.auto import DEFAULT_SEARCH, auto
    from tfxmed.experiments.tuning import load_search

    search_file = args.config or DEFAULT_SEARCH
    overrides = tuple(overrides_of(args))
    with refusals():
        strategy = strategy_for(load_search(search_file, (f"data.npz={args.data}", *overrides)).base)
        summary = auto(args.data, args.budget_minutes, args.out, strategy, args.seeds, search_file, overrides,
                       args.verbose)
    emit(summary)
    return 0

"""Ensemble finished runs: `python -m tfxmed ensemble --runs RUN RUN [...] --method mean|weighted|stacking --out DIR`.

The members' logits are combined by a layer fitted on validation (`tfxmed.experiments.ensembling`);
DIR is a run directory like any other (evaluate, report, explain, export), with DIR/ensemble.json
(weights; validation AUC, cross-fitted for stacking). Prints that summary.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from tfxmed.commands.common import emit, refusals


def main(argv: Sequence[str] | None = None, prog: str = "python -m tfxmed ensemble") -> int:
    parser = argparse.ArgumentParser(prog=prog, description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", nargs="+", required=True, help="member run directories (same data and input)")
    parser.add_argument("--method", default="mean", help="mean | weighted | stacking (default: mean)")
    parser.add_argument("--out", required=True, help="the new run directory to write")
    args = parser.parse_args(argv)
    from tfxmed.experiments.ensembling import ensemble

    with refusals():
        return emit(ensemble(args.runs, args.method, args.out))

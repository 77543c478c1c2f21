"""Compare runs on one split: `python -m tfxmed compare RUN RUN [...] [--group NAME=RUN,RUN ...] [--out DIR]`.

DeLong (AUC) and McNemar (ACC) tests of each run against the first, Holm-adjusted; groups of runs
(seeds, paired by position) get paired t / Wilcoxon tests (`tfxmed.experiments.compare`). Writes
DIR/compare.md and DIR/compare.json and prints the JSON."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from tfxmed.commands.common import emit, refusals


def _group(text: str) -> tuple[str, list[str]]:
    name, separator, runs = text.partition("=")
    members = [run for run in runs.split(",") if run]
    if not name or not separator or not members:
        raise argparse.ArgumentTypeError(f"--group '{text}': expected NAME=RUN[,RUN...]")
    return name, members


def main(argv: Sequence[str] | None = None, prog: str = "python -m tfxmed compare") -> int:
    parser = argparse.ArgumentParser(prog=prog, description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="*", help="run directories; the first is the reference")
    parser.add_argument("--group", type=_group, action="append", default=[], metavar="NAME=RUN,RUN",
                        help="a group of runs (seeds or folds), paired by position with the first group")
    parser.add_argument("--split", default="test", help="the split every run is scored on (default: test)")
    parser.add_argument("--out", default="runs/compare", help="folder for compare.md and compare.json")
    args = parser.parse_args(argv)
    from tfxmed.experiments.compare import compare

    with refusals(ValueError):
        return emit(compare(args.runs, args.split, dict(args.group), out=args.out))

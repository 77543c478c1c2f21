"""Compare runs on one split: `python -m tfxmed compare RUN RUN [...] [--group NAME=RUN,RUN ...] [--out DIR]`.

Every run is tested against the first on the same images: DeLong's test of AUC, McNemar's test of
accuracy, with Holm-adjusted p-values. `--group` (repeatable) adds groups of runs (seeds or folds,
paired by position): mean ± sd and paired t / Wilcoxon tests against the first group. Writes
DIR/compare.md and DIR/compare.json and prints the JSON.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence

from tfxmed.commands.common import emit, fail, refusals


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
    from tfxmed.experiments.compare import compare, markdown
    from tfxmed.storage import make_dirs, write_json_atomic, write_text_atomic

    for run in [*args.runs, *(r for _, members in args.group for r in members)]:
        if not os.path.isdir(run):
            fail(f"run '{run}': no such folder (give run directories written by train, auto or ensemble)")
    with refusals(ValueError):
        result = compare(args.runs, args.split, dict(args.group))
    make_dirs(args.out)
    write_json_atomic(result, os.path.join(args.out, "compare.json"))
    write_text_atomic(markdown(result), os.path.join(args.out, "compare.md"))
    return emit(result)

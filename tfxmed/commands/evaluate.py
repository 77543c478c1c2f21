"""Evaluate a run: `python -m tfxmed evaluate --run DIR [--split test]`.

Writes RUN/eval/metrics.json (diagnostic metrics with CIs, localisation and faithfulness of the
default explanation), ROC and confusion-matrix PNGs, maps and overlays.
"""

from __future__ import annotations

from collections.abc import Sequence

from tfxmed.commands.common import emit, refusals, run_parser


def main(argv: Sequence[str] | None = None, prog: str = "python -m tfxmed evaluate") -> int:
    parser = run_parser(prog, __doc__)
    parser.add_argument("--split", default="test")
    args = parser.parse_args(argv)
    from tfxmed.evaluation import evaluate_run, headline

    with refusals():
        metrics = evaluate_run(args.run, args.split)
    return emit(headline(metrics))

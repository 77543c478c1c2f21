"""Write a run's HTML report: `python -m tfxmed report --run DIR [--split test] [--methods default,gradcam]`.

One self-contained HTML file (images embedded): configuration, diagnostic metrics with CIs, ROC /
precision-recall / calibration / confusion figures, explanation metrics per method, and galleries of
true positives, false positives and false negatives with each method's overlay next to the mask.
Runs the evaluation first when the run has none.
"""

from __future__ import annotations

from collections.abc import Sequence

from tfxmed.commands.common import emit, parse_methods, refusals, run_parser
from tfxmed.reporting import DEFAULT_METHODS


def main(argv: Sequence[str] | None = None, prog: str = "python -m tfxmed report") -> int:
    parser = run_parser(prog, __doc__)
    parser.add_argument("--split", default="test")
    parser.add_argument("--methods", default=",".join(DEFAULT_METHODS),
                        help="explainers shown; 'default' is the run's default explanation (explain.method)")
    parser.add_argument("--per-gallery", type=int, default=6, help="cases per gallery")
    parser.add_argument("--explain-limit", type=int, default=64, help="lesion images scored per method")
    parser.add_argument("--out", default=None, help="HTML path (default RUN/report.html)")
    args = parser.parse_args(argv)
    methods = parse_methods(args.methods, allow_default=True)
    from tfxmed.reporting import build_report

    with refusals(ValueError):
        path = build_report(args.run, args.split, methods, args.per_gallery, args.explain_limit, args.out)
    return emit({"report": path})

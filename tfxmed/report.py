"""`python -m tfxmed.report --run DIR [--split test] [--methods gradcam,ig] [--out FILE]`.

Writes one self-contained HTML file (images embedded) for a trained run: configuration, diagnostic
metrics with CIs, ROC / precision-recall / calibration / confusion figures, explanation metrics per
method, and galleries of true positives, false positives and false negatives with each method's
overlay next to the ground-truth mask. Runs `tfxmed.evaluate` first when the run has no evaluation.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Sequence


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tfxmed.report", description=__doc__)
    parser.add_argument("--run", required=True, help="run directory written by python -m tfxmed.train")
    parser.add_argument("--split", default="test")
    parser.add_argument("--methods", default="gradcam,ig", help="explainers shown (see python -m tfxmed.explain)")
    parser.add_argument("--per-gallery", type=int, default=6, help="cases per gallery")
    parser.add_argument("--explain-limit", type=int, default=64, help="lesion images scored per method")
    parser.add_argument("--out", default=None, help="HTML path (default RUN/report.html)")
    args = parser.parse_args(argv)
    from tfxmed.reporting import build_report

    methods = tuple(m.strip() for m in args.methods.split(",") if m.strip())
    try:
        path = build_report(args.run, args.split, methods, args.per_gallery, args.explain_limit, args.out)
    except (FileNotFoundError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(json.dumps({"report": path}))
    return 0


if __name__ == "__main__":
    sys.exit(main())

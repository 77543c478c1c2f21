"""`python -m tfxmed.evaluate --run DIR [--split test]`: metrics.json, ROC/confusion PNGs, Grad-CAM IoU."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Sequence


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tfxmed.evaluate", description=__doc__)
    parser.add_argument("--run", required=True, help="run directory written by python -m tfxmed.train")
    parser.add_argument("--split", default="test")
    args = parser.parse_args(argv)
    from tfxmed.evaluation import evaluate_run

    try:
        metrics = evaluate_run(args.run, args.split)
    except FileNotFoundError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    summary = {
        "auc": metrics["classification"]["auc"],
        "accuracy": metrics["classification"]["accuracy"],
        "gradcam_iou": metrics["localization"].get("iou_mean"),
        "pointing_game": metrics["localization"].get("pointing_game"),
        "gradcam_deletion_auc": metrics["localization"].get("deletion_auc"),
        "gradcam_insertion_auc": metrics["localization"].get("insertion_auc"),
    }
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())

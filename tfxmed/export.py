"""`python -m tfxmed.export --run DIR`: SavedModel with `serving_default` and `explain` signatures."""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Sequence


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tfxmed.export", description=__doc__)
    parser.add_argument("--run", required=True, help="run directory written by python -m tfxmed.train")
    parser.add_argument("--out", default=None, help="output folder (default: RUN/saved_model)")
    args = parser.parse_args(argv)
    from tfxmed.evaluation import load_run
    from tfxmed.exporting import export_saved_model

    try:
        config, manifest, _, model = load_run(args.run)
    except FileNotFoundError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    path = export_saved_model(
        model, manifest, config.data.image_size, args.out or os.path.join(args.run, "saved_model"),
        config.explain.layer,
    )
    print(json.dumps({"saved_model": path, "signatures": ["serving_default", "explain"]}))
    return 0


if __name__ == "__main__":
    sys.exit(main())

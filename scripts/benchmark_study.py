"""Load test of the reader study's pages; prints JSON with the p50 / p95 / max time of a rating POST.

A synthetic study (no model) is served by `python -m tfxmed study serve` in its own process; READERS
threads each sign in with their link and post RATINGS ratings (reading each page first, as a browser
does; every tenth rating is posted twice, a double-click). The database is then checked: exactly one
current row and one history row per rating, each with the value posted (`ok`).

    python scripts/benchmark_study.py [--readers 20] [--ratings 50] > benchmark_study.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile

from tfxmed.reader_study.load import load_test


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--readers", type=int, default=20)
    parser.add_argument("--ratings", type=int, default=50, help="ratings per reader")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        result = load_test(folder, args.readers, args.ratings)
    result["machine"] = {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()}
    print(json.dumps(result, indent=2))
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    raise SystemExit(main())

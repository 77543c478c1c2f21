"""Look inside converted TFRecords: `python -m tfxmed inspect DIR` (counts, a contact sheet, checks).

The same command as `python -m tfrecords_tools.inspect`.
"""

from __future__ import annotations

from collections.abc import Sequence


def main(argv: Sequence[str] | None = None, prog: str = "python -m tfxmed inspect") -> int:
    from tfrecords_tools.inspect import main as inspect

    return inspect(argv, prog=prog)

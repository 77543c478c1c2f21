"""Convert a dataset to TFRecords: `python -m tfxmed convert {synthetic,medmnist,folder,csv,...} ... --out DIR`.

The same command as `python -m tfrecords_tools.convert`; see its --help for each source's flags.
"""

from __future__ import annotations

from collections.abc import Sequence


def main(argv: Sequence[str] | None = None, prog: str = "python -m tfxmed convert") -> int:
    from tfrecords_tools.convert import main as convert

    return convert(argv, prog=prog)

"""Export a run: `python -m tfxmed export --run DIR [--out DIR]`.

Writes a SavedModel with `serving_default` (probabilities) and `explain` (probabilities + map)
signatures; both take float32 images in [0, 1] at any size and preprocess inside the graph.
"""

from __future__ import annotations

from collections.abc import Sequence

from tfxmed.commands.common import emit, refusals, run_parser


def main(argv: Sequence[str] | None = None, prog: str = "python -m tfxmed export") -> int:
    parser = run_parser(prog, __doc__)
    parser.add_argument("--out", default=None, help="output folder (default: RUN/saved_model)")
    args = parser.parse_args(argv)
    from tfxmed.exporting import export_run

    with refusals():
        path = export_run(args.run, args.out)
    return emit({"saved_model": path, "signatures": ["serving_default", "explain"]})

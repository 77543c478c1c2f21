"""Audit a run for a shortcut: `python -m tfxmed audit --run DIR [--methods gradcam,ig] [--add-marker]`.

For every test image with a known spurious cue (the synthetic corner marker), compares the decision
with the cue and with the cue inpainted away, and flags images whose explanation puts more than a
threshold (chosen on validation) of its mass on the cue. Writes RUN/eval/audit.json and a gallery of
flagged cases. `--add-marker` draws the marker on every image at audit time only: the negative
control for a model trained without it.
"""

from __future__ import annotations

from collections.abc import Sequence

from tfxmed.commands.common import emit, parse_methods, refusals, run_parser


def main(argv: Sequence[str] | None = None, prog: str = "python -m tfxmed audit") -> int:
    parser = run_parser(prog, __doc__)
    parser.add_argument("--split", default="test")
    parser.add_argument("--methods", default="default",
                        help="explainers audited; 'default' is the run's default explanation (explain.method)")
    parser.add_argument("--add-marker", action="store_true",
                        help="draw the synthetic corner marker on every image (negative control)")
    args = parser.parse_args(argv)
    methods = parse_methods(args.methods, allow_default=True)
    from tfxmed.shortcut_audit import audit_run

    with refusals(ValueError):
        result = audit_run(args.run, args.split, methods, args.add_marker)
    return emit(result)

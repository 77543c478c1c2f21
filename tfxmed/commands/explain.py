"""Explain a run's images: `python -m tfxmed explain --run DIR --methods gradcam,ig,lime,fusion --n 32`.

Explains the first N images of a split (lesion images first) with each method and writes overlays,
raw maps, TensorBoard images and an index page into RUN/explanations/.
"""

from __future__ import annotations

from collections.abc import Sequence

from tfxmed.commands.common import emit, parse_methods, refusals, run_parser


def main(argv: Sequence[str] | None = None, prog: str = "python -m tfxmed explain") -> int:
    parser = run_parser(prog, __doc__)
    parser.add_argument("--methods", default="gradcam,gradcampp,ig,lime,fusion")
    parser.add_argument("--n", type=int, default=32, help="images to explain")
    parser.add_argument("--split", default="test")
    parser.add_argument("--target", choices=("predicted", "true"), default="predicted")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--precision", choices=("float32", "bfloat16", "float16"), default="float32",
                        help="compute dtype of the explanation passes (bfloat16: fast on AMX CPUs, GPUs, TPUs)")
    parser.add_argument("--out", default=None, help="output folder (default: RUN/explanations)")
    args = parser.parse_args(argv)
    methods = parse_methods(args.methods)
    from tfxmed.evaluation import explain_run

    with refusals():
        result = explain_run(args.run, methods, args.n, args.split, args.target, args.batch_size, args.precision,
                             args.out)
    return emit(result)

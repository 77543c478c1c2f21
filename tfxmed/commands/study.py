"""A reader study of a run's explanations: `python -m tfxmed study <create|add-reader|serve|results>`.

    create --run DIR --out study.db [--methods gradcam,ig,fusion] [--cases 40] [--split test]
    add-reader study.db NAME [--url http://HOST:PORT] [--reissue]   prints the reader's login link, once
    serve study.db [--host 127.0.0.1] [--port 8000]
    results study.db [--out FOLDER]   mean HTS with CIs, Cohen's / Fleiss' κ, HTS vs IoU, CSV, HTML section
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from tfxmed.commands.common import emit, parse_methods, refusals


def main(argv: Sequence[str] | None = None, prog: str = "python -m tfxmed study") -> int:
    parser = argparse.ArgumentParser(prog=prog, description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True, metavar="{create,add-reader,serve,results}")
    create = commands.add_parser("create", help="build a study from a run's split")
    create.add_argument("--run", required=True, help="run directory written by `python -m tfxmed train`")
    create.add_argument("--out", required=True, help="the new study database, e.g. study.db")
    create.add_argument("--methods", default="gradcam,ig,fusion", help="explainers rated ('default': the run's)")
    create.add_argument("--cases", type=int, default=40, help="cases, stratified by TP / FP / FN / TN")
    create.add_argument("--split", default="test")
    create.add_argument("--seed", type=int, default=0)
    reader = commands.add_parser("add-reader", help="add a reader; prints their login link once")
    reader.add_argument("study")
    reader.add_argument("name")
    reader.add_argument("--url", default="http://127.0.0.1:8000", help="where the study is served")
    reader.add_argument("--reissue", action="store_true", help="a new link for an existing reader")
    serve = commands.add_parser("serve", help="serve the readers' pages")
    serve.add_argument("study")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    results = commands.add_parser("results", help="write the analysis")
    results.add_argument("study")
    results.add_argument("--out", default=None, help="folder (default: study_results/ beside the database)")
    args = parser.parse_args(argv)
    from tfxmed import reader_study

    with refusals(reader_study.RatingError):
        if args.command == "create":
            return emit(reader_study.create_study(args.run, args.out, parse_methods(args.methods, allow_default=True),
                                                  args.cases, args.split, args.seed))
        if args.command == "add-reader":
            return emit(reader_study.register_reader(args.study, args.name, args.reissue, args.url))
        if args.command == "serve":
            reader_study.serve(args.study, args.host, args.port)
            return 0
        return emit(reader_study.write_results(args.study, args.out))

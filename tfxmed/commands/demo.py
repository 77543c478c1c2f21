"""Run everything on the embedded default: `python -m tfxmed demo [--config configs/quickstart.yaml]`.

generate → convert to TFRecords → train (ResNet50 + CSAM) → evaluate → export → HTML report, then a
summary of the figures and of where every artefact is.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from tfxmed.commands.common import experiment_parser, parse_experiment, refusals, strategy_for


def main(argv: Sequence[str] | None = None, prog: str = "python -m tfxmed demo") -> int:
    args = experiment_parser(prog, __doc__).parse_args(argv)
    if args.config is None:
        from tfxmed.workflow import QUICKSTART_CONFIG

        args.config = QUICKSTART_CONFIG
    config = parse_experiment(args)
    strategy = strategy_for(config)
    from tfxmed.workflow import run_all

    with refusals():
        summary = run_all(config, strategy)
    print("\n== tfxmed demo summary ==")
    print(json.dumps(summary, indent=2))
    return 0

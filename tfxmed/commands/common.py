"""What every command shares: the experiment flags (--config, --set, --strategy), --run, and `fail`.

Flags are parsed here and in the command modules, never in libraries.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from typing import NoReturn

from tfxmed.config import ConfigError, Experiment, load_config
from tfxmed.errors import Refusal

__all__ = ["experiment_parser", "run_parser", "parse_experiment", "parse_methods", "strategy_for", "fail", "emit",
           "refusals"]

STRATEGY_HELP = "cpu | gpu | mirrored | multiworker | tpu"


def experiment_parser(prog: str, description: str | None, config_required: bool = False) -> argparse.ArgumentParser:
    """A parser with --config, --set KEY=VALUE (repeatable) and --strategy."""
    parser = argparse.ArgumentParser(prog=prog, description=description,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default=None, required=config_required,
                        help="YAML file, e.g. configs/quickstart.yaml (defaults apply otherwise)")
    parser.add_argument(
        "--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
        help="override a config value, e.g. --set train.epochs=3 (repeatable)",
    )
    parser.add_argument("--strategy", default=None, help=STRATEGY_HELP)
    return parser


def run_parser(prog: str, description: str | None) -> argparse.ArgumentParser:
    """A parser for commands that read a finished run: --run DIR."""
    parser = argparse.ArgumentParser(prog=prog, description=description,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", required=True, help="run directory written by `python -m tfxmed train`")
    return parser


def overrides_of(args: argparse.Namespace) -> list[str]:
    """--set values, plus --strategy as `runtime.strategy=...`."""
    return [*args.overrides, *([f"runtime.strategy={args.strategy}"] if args.strategy else [])]


def parse_experiment(args: argparse.Namespace) -> Experiment:
    try:
        return load_config(args.config, overrides_of(args))
    except (ConfigError, FileNotFoundError) as error:
        fail(f"config error: {error}")


def parse_methods(text: str, allow_default: bool = False) -> tuple[str, ...]:
    """'gradcam, ig' → ('gradcam', 'ig'), refusing names no explainer has ('default' where allowed)."""
    from tfxmed.explain import METHODS

    methods = tuple(m.strip() for m in text.split(",") if m.strip())
    unknown = [m for m in methods if m not in METHODS and not (allow_default and m == "default")]
    if not methods or unknown:
        fail(f"unknown explanation method(s) {unknown or [text]}; choose from {', '.join(METHODS)}")
    return methods


def fail(message: str, code: int = 2) -> NoReturn:
    """Prints `error: message` to stderr and exits with `code` (2: the user's input was refused)."""
    print(f"error: {message}", file=sys.stderr)
    sys.exit(code)


@contextlib.contextmanager
def refusals(*also: type[Exception]):
    """Turns the library's refusals (missing files, bad config values, `Refusal`s, `also`) into `fail` messages."""
    try:
        yield
    except (FileNotFoundError, ConfigError, Refusal, *also) as error:
        fail(str(error))


def emit(payload: dict) -> int:
    """Prints a command's result as one JSON line on stdout; returns exit code 0."""
    print(json.dumps(payload, default=str))
    return 0


def strategy_for(config: Experiment):
    """Configures devices and builds the config's strategy, exiting with the factory's message on error."""
    from tfxmed import distribute
    from tfxmed.data.augment_albumentations import check_backend

    try:
        check_backend(config.data.augment_backend, config.runtime.strategy)
    except ValueError as error:
        fail(str(error))
    try:
        distribute.configure_devices(config.runtime.cpu_devices)
        return distribute.make_strategy(config.runtime.strategy, config.runtime.tpu, config.runtime.start_timeout)
    except distribute.StrategyError as error:
        fail(str(error))

"""Flags shared by the entry points: --config, --set, --strategy (parsed here, never in libraries)."""

from __future__ import annotations

import argparse
import sys
from typing import Sequence

from tfxmed.config import ConfigError, Experiment, load_config

__all__ = ["experiment_parser", "parse_experiment", "strategy_for", "fail"]


def experiment_parser(prog: str, description: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=prog, description=description)
    parser.add_argument("--config", default=None, help="YAML file in configs/ (defaults apply otherwise)")
    parser.add_argument(
        "--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
        help="override a config value, e.g. --set train.epochs=3 (repeatable)",
    )
    parser.add_argument("--strategy", default=None, help="cpu | gpu | mirrored | multiworker | tpu")
    return parser


def parse_experiment(args: argparse.Namespace) -> Experiment:
    overrides = list(args.overrides)
    if args.strategy:
        overrides.append(f"runtime.strategy={args.strategy}")
    try:
        return load_config(args.config, overrides)
    except (ConfigError, FileNotFoundError) as error:
        fail(f"config error: {error}")


def fail(message: str, code: int = 2):
    print(f"error: {message}", file=sys.stderr)
    sys.exit(code)


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
        return distribute.make_strategy(config.runtime.strategy, config.runtime.tpu)
    except distribute.StrategyError as error:
        fail(str(error))

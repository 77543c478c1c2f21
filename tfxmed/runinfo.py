"""What a run directory records about how it was made: resolved config, versions, git SHA, seed."""

from __future__ import annotations

import datetime
import importlib.metadata
import json
import os
import platform
import subprocess
import sys

from tfxmed.config import Experiment, save_config

__all__ = ["write_run_info", "package_versions", "git_sha"]

PACKAGES = ("tfxmed", "tensorflow", "tensorflow-cpu", "keras", "numpy", "scikit-learn", "scipy")


def package_versions() -> dict:
    versions = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return versions


def git_sha() -> str | None:
    """The SHA of the checkout this package runs from, or None outside git."""
    try:
        result = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=os.path.dirname(os.path.abspath(__file__)),
            capture_output=True, text=True, timeout=10, check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return result.stdout.strip() or None if result.returncode == 0 else None


def write_run_info(config: Experiment, run_dir: str, extra: dict | None = None) -> dict:
    """Writes `config.yaml` (resolved) and `run_info.json` into `run_dir`."""
    os.makedirs(run_dir, exist_ok=True)
    save_config(config, os.path.join(run_dir, "config.yaml"))
    info = {
        "seed": config.runtime.seed,
        "git_sha": git_sha(),
        "versions": package_versions(),
        "command": sys.argv,
        "started": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        **(extra or {}),
    }
    temporary = os.path.join(run_dir, "run_info.json.tmp")
    with open(temporary, "w", encoding="utf-8") as stream:
        json.dump(info, stream, indent=2)
    os.replace(temporary, os.path.join(run_dir, "run_info.json"))
    return info

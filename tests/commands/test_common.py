"""What every command shares (`tfxmed.commands.common`): refusals become `error: ...` and exit 2, method
lists are checked, and --strategy is the last override."""

import json
import pathlib
import subprocess
import sys

import pytest

from tests.helpers import REPO, TINY_CONFIG
from tfxmed.commands.common import emit, experiment_parser, parse_experiment, parse_methods, refusals
from tfxmed.config import ConfigError
from tfxmed.errors import Refusal, RunDirectoryError
from tfxmed.explain import METHODS


def _exit(capsys, action) -> tuple[int, str]:
    """(exit code, stderr) of `action`, which must exit."""
    with pytest.raises(SystemExit) as exit_info:
        action()
    return exit_info.value.code, capsys.readouterr().err


def test_parse_methods_keeps_the_order_and_refuses_unknown_names(capsys):
    assert parse_methods(" gradcam, ig ,,lime") == ("gradcam", "ig", "lime")
    code, err = _exit(capsys, lambda: parse_methods("gradcam,gradcamm,shap"))
    assert code == 2
    assert err == f"error: unknown explanation method(s) ['gradcamm', 'shap']; choose from {', '.join(METHODS)}\n"
    assert _exit(capsys, lambda: parse_methods(" , "))[1].startswith("error: unknown explanation method(s) [' , ']")
    assert "['default']" in _exit(capsys, lambda: parse_methods("default,ig"))[1]
    assert parse_methods("default,ig", allow_default=True) == ("default", "ig")


@pytest.mark.parametrize("kind", [Refusal, RunDirectoryError, FileNotFoundError, ConfigError])
def test_refusals_become_exit_2_with_the_message(capsys, kind):
    def refused():
        with refusals():
            raise kind("folder 'x' is not a run")

    assert _exit(capsys, refused) == (2, "error: folder 'x' is not a run\n")


def test_refusals_let_other_errors_through_unless_named(capsys):
    with pytest.raises(RuntimeError, match="a bug"):  # a bug keeps its traceback
        with refusals():
            raise RuntimeError("a bug")

    def named():
        with refusals(KeyError):
            raise KeyError("no such split")

    assert _exit(capsys, named) == (2, "error: 'no such split'\n")
    with refusals():
        pass  # nothing raised: nothing printed, no exit
    assert capsys.readouterr().err == ""


def test_strategy_flag_is_the_last_override_and_bad_configs_exit_2(capsys):
    parser = experiment_parser("prog", None)
    args = parser.parse_args(["--config", TINY_CONFIG, "--set", "runtime.strategy=gpu", "--strategy", "cpu",
                              "--set", "train.epochs=3"])
    config = parse_experiment(args)
    assert config.runtime.strategy == "cpu" and config.train.epochs == 3
    bad = parser.parse_args(["--config", TINY_CONFIG, "--strategy", "gpus"])
    code, err = _exit(capsys, lambda: parse_experiment(bad))
    assert code == 2 and err.startswith("error: config error: ") and "runtime.strategy" in err and "gpus" in err


def test_emit_prints_one_json_line(capsys):
    assert emit({"run_dir": "r", "auc": 0.5, "path": pathlib.Path("p")}) == 0  # paths are written as text
    out = capsys.readouterr().out
    assert out.count("\n") == 1 and json.loads(out) == {"run_dir": "r", "auc": 0.5, "path": "p"}


def test_evaluate_names_a_missing_run(tmp_path):
    result = subprocess.run([sys.executable, "-m", "tfxmed.evaluate", "--run", str(tmp_path / "nope")],
                            cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and "config.yaml not found" in result.stderr


def test_bad_config_key_fails_before_training(tmp_path):
    result = subprocess.run([sys.executable, "-m", "tfxmed.train", "--config", TINY_CONFIG, "--set", "train.epoks=2"],
                            cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and "unknown config key 'train.epoks'" in result.stderr

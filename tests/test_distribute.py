import json
import math
import os
import subprocess
import sys
import textwrap
import time

import pytest

from tests.helpers import REPO, TINY_CONFIG
from tfxmed import distribute


def test_unknown_strategy_lists_valid_names():
    with pytest.raises(distribute.StrategyError, match="cpu, gpu, mirrored, multiworker, tpu"):
        distribute.make_strategy("quantum")


def test_cpu_strategy_has_one_replica():
    assert distribute.make_strategy("cpu").num_replicas_in_sync == 1


def test_multiworker_without_tf_config_explains_what_to_set(monkeypatch):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    with pytest.raises(distribute.StrategyError, match="TF_CONFIG"):
        distribute.make_strategy("multiworker")


def test_tpu_strategy_fails_fast_with_a_clear_message():
    started = time.time()
    result = subprocess.run(
        [sys.executable, "-m", "tfxmed.train", "--config", TINY_CONFIG, "--strategy=tpu"],
        cwd=REPO, capture_output=True, text=True, timeout=60,
    )
    assert time.time() - started < 60
    assert result.returncode != 0
    assert "no TPU was found" in result.stderr and "runtime.tpu=" in result.stderr


MIRRORED_SCRIPT = textwrap.dedent(
    """
    import json, sys
    import numpy as np
    from tfxmed import distribute
    distribute.configure_devices(2)
    import keras
    from tfxmed.config import load_config
    from tfxmed.training import train

    config = load_config(sys.argv[1], [f"runtime.run_dir={sys.argv[2]}/run", f"data.tfrecord_dir={sys.argv[2]}/data",
                                       "runtime.strategy=mirrored", "train.epochs=1", "train.tensorboard_images=0",
                                       *sys.argv[3:]])
    strategy = distribute.make_strategy("mirrored")

    class Snapshot(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            self.before = [w.copy() for w in self.model.get_weights()]
        def on_train_end(self, logs=None):
            self.changed = sum(not np.allclose(a, b) for a, b in zip(self.before, self.model.get_weights()))

    snapshot = Snapshot()
    result = train(config, strategy, extra_callbacks=[snapshot], verbose=0)
    print(json.dumps({"replicas": strategy.num_replicas_in_sync, "changed": int(snapshot.changed),
                      "loss": result.history["loss"][-1], "exp_loss": result.history.get("exp_loss", [None])[-1]}))
    """
)


@pytest.mark.slow
@pytest.mark.parametrize("overrides", [[], ["train.consistency.enabled=true", "train.batchnorm_batches=2"]],
                         ids=["plain", "consistency-and-batchnorm-statistics"])
def test_mirrored_strategy_trains_over_two_logical_cpus(tmp_path, overrides):
    result = subprocess.run(
        [sys.executable, "-c", MIRRORED_SCRIPT, TINY_CONFIG, str(tmp_path), *overrides],
        cwd=REPO, capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["replicas"] == 2
    assert report["changed"] > 0
    assert math.isfinite(report["loss"])
    if overrides:  # the explanation-consistency train step ran on both replicas
        assert report["exp_loss"] is not None and 0 < report["exp_loss"] < 1


@pytest.mark.parametrize("text, message", [
    ("{not json", "not valid JSON"),
    ('{"task": {"type": "worker", "index": 0}}', "no 'cluster'"),
    ('{"cluster": {"worker": ["localhost:1"]}}', "no 'task'"),
    ('{"cluster": {"worker": ["localhost:1"]}, "task": {"type": "worker", "index": 3}}', "outside the 1"),
    ('{"cluster": {"worker": ["localhost:1"]}, "task": {"type": "chief", "index": 0}}', "not a job"),
    ('{"cluster": {"worker": "localhost:1"}, "task": {"type": "worker", "index": 0}}', "host:port"),
])
def test_malformed_tf_config_is_refused_with_a_reason(text, message):
    """Regression (issue 20): a malformed TF_CONFIG gave a traceback."""
    with pytest.raises(distribute.StrategyError, match=message):
        distribute.read_tf_config(text)


def _free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("localhost", 0))
        return probe.getsockname()[1]


def test_a_peer_that_never_comes_up_times_out_instead_of_hanging():
    """Regression (issue 20): a two-worker TF_CONFIG whose peer never came up hung for good."""
    import time

    config = distribute.read_tf_config(json.dumps(
        {"cluster": {"worker": [f"localhost:{_free_port()}", f"localhost:{_free_port()}"]},
         "task": {"type": "worker", "index": 0}}))
    started = time.monotonic()
    with pytest.raises(distribute.StrategyError, match="did not come up within 2 s"):
        distribute.wait_for_peers(config, timeout=2)
    assert time.monotonic() - started < 10


def test_train_with_a_missing_peer_exits_with_a_message(tmp_path):
    tf_config = {"cluster": {"worker": [f"localhost:{_free_port()}", f"localhost:{_free_port()}"]},
                 "task": {"type": "worker", "index": 0}}
    result = subprocess.run(
        [sys.executable, "-m", "tfxmed", "train", "--config", TINY_CONFIG, "--strategy=multiworker",
         "--set", "runtime.start_timeout=3", "--set", f"runtime.run_dir={tmp_path / 'run'}"],
        cwd=REPO, capture_output=True, text=True, timeout=120, env={**os.environ, "TF_CONFIG": json.dumps(tf_config)},
    )
    assert result.returncode == 2 and "did not come up within 3 s" in result.stderr
    assert not (tmp_path / "run").exists()  # refused before anything was written

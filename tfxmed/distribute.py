"""The one strategy factory: "cpu" | "gpu" | "mirrored" | "multiworker" | "tpu" → tf.distribute.Strategy.

Call `configure_devices` before anything initialises TensorFlow's runtime (it splits the CPU into
logical devices so MirroredStrategy can be exercised on a machine without GPUs).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import time

import tensorflow as tf

__all__ = ["STRATEGIES", "StrategyError", "configure_devices", "make_strategy", "read_tf_config", "wait_for_peers"]

STRATEGIES = ("cpu", "gpu", "mirrored", "multiworker", "tpu")


class StrategyError(RuntimeError):
    """The requested strategy cannot run here; the message says what to change."""


def configure_devices(cpu_devices: int = 1) -> None:
    """Splits the physical CPU into `cpu_devices` logical devices (must run before TF initialises)."""
    if cpu_devices <= 1:
        return
    cpus = tf.config.list_physical_devices("CPU")
    wanted = [tf.config.LogicalDeviceConfiguration()] * cpu_devices
    try:
        tf.config.set_logical_device_configuration(cpus[0], wanted)
    except RuntimeError as error:
        existing = len(tf.config.list_logical_devices("CPU"))
        if existing != cpu_devices:
            raise StrategyError(
                f"cannot split the CPU into {cpu_devices} devices: TensorFlow is already initialised "
                f"with {existing}; call configure_devices before building any tensor"
            ) from error


def _tpu_strategy(tpu: str) -> tf.distribute.Strategy:
    hint = (
        "pass --set runtime.tpu=<TPU name or grpc://host:8470> (or run on a Cloud TPU VM with "
        "runtime.tpu=local), or choose --strategy=cpu|gpu|mirrored"
    )
    try:
        resolver = tf.distribute.cluster_resolver.TPUClusterResolver(tpu=tpu or None)
        tf.config.experimental_connect_to_cluster(resolver)
        tf.tpu.experimental.initialize_tpu_system(resolver)
    except (ValueError, RuntimeError, tf.errors.OpError) as error:
        raise StrategyError(f"no TPU was found ({type(error).__name__}: {error}); {hint}") from error
    return tf.distribute.TPUStrategy(resolver)


def read_tf_config(text: str | None) -> dict:
    """The parsed $TF_CONFIG of a multi-worker run, checked: JSON, a worker list, a task inside it."""
    example = json.dumps(
        {"cluster": {"worker": ["host1:12345", "host2:12345"]}, "task": {"type": "worker", "index": 0}})
    if not text:
        raise StrategyError(f"--strategy=multiworker needs $TF_CONFIG describing the cluster, e.g. {example}")
    try:
        config = json.loads(text)
    except json.JSONDecodeError as error:
        raise StrategyError(
            f"$TF_CONFIG is not valid JSON ({error.msg} at character {error.pos}); e.g. {example}") from None
    cluster, task = (config.get("cluster"), config.get("task")) if isinstance(config, dict) else (None, None)
    if not isinstance(cluster, dict) or not cluster:
        raise StrategyError(f"$TF_CONFIG has no 'cluster' mapping of job → addresses; e.g. {example}")
    for job, addresses in cluster.items():
        if not isinstance(addresses, list) or not all(isinstance(a, str) and ":" in a for a in addresses):
            raise StrategyError(f"$TF_CONFIG cluster.{job} must be a list of 'host:port' strings, got {addresses!r}")
    if not isinstance(task, dict) or "type" not in task or "index" not in task:
        raise StrategyError(f"$TF_CONFIG has no 'task' with 'type' and 'index'; e.g. {example}")
    if task["type"] not in cluster:
        raise StrategyError(f"$TF_CONFIG task.type '{task['type']}' is not a job of the cluster ({', '.join(cluster)})")
    index, size = task["index"], len(cluster[task["type"]])
    if not isinstance(index, int) or isinstance(index, bool) or not 0 <= index < size:
        raise StrategyError(f"$TF_CONFIG task.index {index!r} is outside the {size} '{task['type']}' address(es)")
    return config


def wait_for_peers(config: dict, timeout: float) -> None:
    """Rendezvous before the strategy starts: listens on this task's port and waits until every other
    task of the cluster accepts connections (on its own rendezvous listener or its TensorFlow server).

    Raises `StrategyError` after `timeout` seconds. Needed because the strategy's constructor waits in
    C++, holding the interpreter, until every worker has registered: once it is called, neither a
    timeout nor a Python signal handler can run.
    """
    me = config["cluster"][config["task"]["type"]][config["task"]["index"]]
    peers = [address for addresses in config["cluster"].values() for address in addresses if address != me]
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        listener.bind(("", int(me.rpartition(":")[2])))
    except OSError as error:
        listener.close()
        raise StrategyError(f"this worker's address {me} from $TF_CONFIG cannot be used: {error.strerror}") from None
    listener.listen(16)
    listener.setblocking(False)
    deadline = time.monotonic() + timeout
    try:
        waiting = list(peers)
        while waiting:
            try:  # answer peers that are probing us, so that they can go on too
                connection, _ = listener.accept()
                connection.close()
            except BlockingIOError:
                pass
            host, _, port = waiting[0].rpartition(":")
            try:
                with socket.create_connection((host, int(port)), timeout=1):
                    waiting.pop(0)
                    continue
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise StrategyError(
                    f"worker {waiting[0]} of $TF_CONFIG did not come up within {timeout:.0f} s; start every worker "
                    "(same cluster, its own task index) or raise runtime.start_timeout"
                )
            time.sleep(0.2)
    finally:
        listener.close()


def _multiworker_strategy(timeout: float) -> tf.distribute.Strategy:
    config = read_tf_config(os.environ.get("TF_CONFIG"))
    # A stuck C++ wait never returns to a Python SIGTERM handler: keep the default action, so a
    # scheduler can always stop a worker.
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    wait_for_peers(config, timeout)
    return tf.distribute.MultiWorkerMirroredStrategy()


def make_strategy(name: str, tpu: str = "", start_timeout: float = 300.0) -> tf.distribute.Strategy:
    """Returns the strategy called `name`.

    - cpu: TensorFlow's default strategy on this host.  - gpu: the first GPU (error if none).
    - mirrored: all GPUs, or all logical CPUs when there is no GPU (see `configure_devices`).
    - multiworker: MultiWorkerMirroredStrategy configured from $TF_CONFIG (checked first); every worker
      must come up within `start_timeout` seconds.
    - tpu: TPUStrategy on the TPU named by `tpu` (error, not a hang, when there is none).
    """
    if name == "cpu":
        # The default (no-op) strategy: OneDeviceStrategy("/cpu:0") measured ~4x slower per step here.
        return tf.distribute.get_strategy()
    if name == "gpu":
        if not tf.config.list_physical_devices("GPU"):
            raise StrategyError("--strategy=gpu but TensorFlow sees no GPU; install tensorflow[and-cuda] or use cpu")
        return tf.distribute.OneDeviceStrategy("/gpu:0")
    if name == "mirrored":
        gpus = tf.config.list_logical_devices("GPU")
        devices = [d.name for d in (gpus or tf.config.list_logical_devices("CPU"))]
        return tf.distribute.MirroredStrategy(devices=devices)
    if name == "multiworker":
        return _multiworker_strategy(start_timeout)
    if name == "tpu":
        return _tpu_strategy(tpu)
    raise StrategyError(f"unknown strategy '{name}'; choose one of {', '.join(STRATEGIES)}")

"""Files tfxmed writes and reads everywhere: atomic writes, checksums and the dataset manifest.

One home for both packages: the converters in `tfrecords_tools` and the library in `tfxmed` import
these helpers from here, so nothing else hand-writes a temporary file and a rename.

Every write goes to a temporary name beside its target and is renamed into place only once it is
complete, so a killed process never leaves a half-written file under a final name. Local paths are
fsynced before the rename; other filesystems (`gs://`, `ram://`) go through `tf.io.gfile`, imported
only when such a path is used, so reading a config does not load TensorFlow.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import shutil
from collections.abc import Iterator

import yaml

__all__ = [
    "MANIFEST_NAME", "atomic_path", "exists", "file_sha256", "is_dir", "is_remote", "list_dir", "load_manifest",
    "make_dirs", "open_file", "remove", "rename", "write_bytes_atomic", "write_figure_atomic", "write_npz_atomic",
    "write_json_atomic", "write_text_atomic", "write_yaml_atomic",
]

MANIFEST_NAME = "manifest.json"


def is_remote(path: str | os.PathLike) -> bool:
    """True for paths on a non-local TensorFlow filesystem (`gs://`, `ram://`, ...)."""
    return "://" in os.fspath(path)


def _gfile():
    import tensorflow as tf  # only for remote paths: see the module docstring

    return tf.io.gfile


def open_file(path: str | os.PathLike, mode: str = "r"):
    """`open` for local paths, `tf.io.gfile.GFile` for remote ones."""
    path = os.fspath(path)
    if is_remote(path):
        return _gfile().GFile(path, mode)
    return open(path, mode, encoding=None if "b" in mode else "utf-8")


def exists(path: str | os.PathLike) -> bool:
    path = os.fspath(path)
    return _gfile().exists(path) if is_remote(path) else os.path.exists(path)


def is_dir(path: str | os.PathLike) -> bool:
    path = os.fspath(path)
    return _gfile().isdir(path) if is_remote(path) else os.path.isdir(path)


def list_dir(path: str | os.PathLike) -> list[str]:
    """The names in a folder (no trailing slashes, whatever the filesystem)."""
    path = os.fspath(path)
    return [name.rstrip("/") for name in _gfile().listdir(path)] if is_remote(path) else os.listdir(path)


def make_dirs(path: str | os.PathLike) -> None:
    """Creates a folder and its parents (nothing when it exists)."""
    path = os.fspath(path)
    _gfile().makedirs(path) if is_remote(path) else os.makedirs(path, exist_ok=True)


def remove(path: str | os.PathLike) -> None:
    """Removes a file, or a folder with everything in it; nothing when `path` does not exist."""
    path = os.fspath(path)
    if not exists(path):
        return
    if is_remote(path):
        _gfile().rmtree(path) if _gfile().isdir(path) else _gfile().remove(path)
    elif os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path)
    else:
        os.remove(path)


def rename(source: str | os.PathLike, target: str | os.PathLike) -> None:
    """Moves a file or folder onto `target` (replacing a file there).

    A local move is one atomic rename. Remote filesystems rename files, not folders (`ram://` renames a
    folder's entry and leaves its files behind; object stores have no folders): a remote folder is
    moved file by file, so a reader may see it half moved.
    """
    source, target = os.fspath(source), os.fspath(target)
    if not is_remote(target):
        os.replace(source, target)
    elif not _gfile().isdir(source):
        _gfile().rename(source, target, overwrite=True)
    else:
        for folder, _, files in _gfile().walk(source):
            moved = target + folder[len(source.rstrip("/")):]
            _gfile().makedirs(moved)
            for name in files:
                _gfile().rename(os.path.join(folder, name), os.path.join(moved, name), overwrite=True)
        _gfile().rmtree(source)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, suffix: str = "") -> Iterator[str]:
    """Yields a temporary path beside `path`; renames it onto `path` when the block ends without error.

    `suffix` keeps writers that look at the extension happy (e.g. ".png", ".keras"). The temporary
    file is removed when the block raises, so a failed write leaves neither a stale `.tmp` nor a
    changed target.
    """
    path = os.fspath(path)
    directory, name = os.path.split(path)
    temporary = os.path.join(directory, f".{name}.tmp{suffix}")
    try:
        yield temporary
        if is_remote(path):
            _gfile().rename(temporary, path, overwrite=True)
        else:
            os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(Exception):
            if exists(temporary):
                _gfile().remove(temporary) if is_remote(temporary) else os.remove(temporary)
        raise


def write_bytes_atomic(data: bytes, path: str | os.PathLike) -> None:
    """Writes `data` to `path` atomically (fsynced on local disks)."""
    with atomic_path(path) as temporary:
        with open_file(temporary, "wb") as stream:
            stream.write(data)
            if not is_remote(temporary):
                stream.flush()
                os.fsync(stream.fileno())


def write_figure_atomic(figure, path: str | os.PathLike, **savefig_options) -> None:
    """Writes a Matplotlib figure as PNG to `path` atomically: rendered in memory first, since Matplotlib
    writes local files only (any filesystem then, `gs://` included)."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", **savefig_options)
    write_bytes_atomic(buffer.getvalue(), path)


def write_npz_atomic(path: str | os.PathLike, **arrays) -> None:
    """`np.savez_compressed(path, **arrays)`, atomic and on any filesystem (built in memory first)."""
    import numpy as np

    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    write_bytes_atomic(buffer.getvalue(), path)


def write_text_atomic(text: str, path: str | os.PathLike) -> None:
    """Writes UTF-8 `text` to `path` atomically."""
    write_bytes_atomic(text.encode("utf-8"), path)


def write_json_atomic(payload, path: str | os.PathLike) -> None:
    """Writes JSON to `path` atomically; NaN and infinities are refused (they are not JSON)."""
    write_text_atomic(json.dumps(payload, indent=2, allow_nan=False), path)


def write_yaml_atomic(payload, path: str | os.PathLike) -> None:
    """Writes YAML (keys in the given order) to `path` atomically."""
    write_text_atomic(yaml.safe_dump(payload, sort_keys=False), path)


def file_sha256(path: str | os.PathLike) -> str:
    """Hex sha256 of a file's bytes (shard checksums, input fingerprints, dataset folder names)."""
    digest = hashlib.sha256()
    with open_file(path, "rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def load_manifest(directory: str | os.PathLike) -> dict:
    """Reads `manifest.json` of a converted dataset, with a clear error when it is missing."""
    path = os.path.join(os.fspath(directory), MANIFEST_NAME)
    if not exists(path):
        raise FileNotFoundError(
            f"{path} not found: convert a dataset first (python -m tfxmed convert ...)"
        )
    with open_file(path) as stream:
        return json.load(stream)

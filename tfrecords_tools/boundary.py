"""What every converter checks at its boundary, before it reads an input or writes an output.

- `read_table(path)`: a CSV's columns and rows, or a `Refusal` naming the file (and line) when it is not
  UTF-8 CSV text.
- `ragged_row(row)`: a CSV row with more or fewer fields than its header (skipped, never guessed at).
- `outside_roots(path, roots)`: a path that resolves (after `..`, an absolute path or a symbolic link)
  outside every folder the user gave. Converters skip such items and report them, unless the user
  passes `--allow-outside-root` (`allow_outside_root=True`).
- `claim_output(out_dir)`: the one way a converter takes an output folder. It refuses a folder
  tfxmed did not create (converters never overwrite or delete what is not theirs) and holds
  `out_dir/.lock` (created with O_EXCL, holding the pid and host) while the conversion runs, so a
  second conversion into the same folder is refused instead of interleaving shards with the first.
  On a remote filesystem (`gs://`, `ram://`: `tf.io.gfile`) the lock is written, not created exclusively
  (object stores have no O_EXCL): a conversion started while another runs is refused, but two started
  in the same instant are not told apart.
"""

from __future__ import annotations

import contextlib
import csv
import errno
import json
import os
import re
import socket
from collections.abc import Iterator, Sequence

from tfxmed import storage
from tfxmed.errors import OutputExistsError, Refusal

__all__ = ["LOCK_NAME", "OUTSIDE_ROOT_HINT", "OutputLockedError", "claim_output", "is_disk_full", "outside_roots",
           "ragged_row", "read_table"]

LOCK_NAME = ".lock"
OUTSIDE_ROOT_HINT = "pass --allow-outside-root to read it"
# What a converter (and `inspect`, `--smote`, `--tfds-metadata`) writes into its output folder.
_OWN_NAMES = re.compile(
    r"(manifest\.json|skipped\.csv|\.progress\.json|\.lock|dataset_info\.json|features\.json|samples\.png"
    r"|[a-z]+(-smote|-gan)?-\d{5}\.tfrecord|gan_samples\.png|\..+\.tmp.*)"
)
_writing: dict[str, bool] = {}  # locks this process holds → whether a writer is using the folder now


class OutputLockedError(Refusal):
    """Another conversion holds the output folder's lock."""


def outside_roots(path: str, roots: Sequence[str]) -> bool:
    """True when `path` resolves (symbolic links and `..` followed) outside every folder in `roots`."""
    try:
        resolved = os.path.realpath(path)
        return not any(os.path.commonpath([resolved, os.path.realpath(root)]) == os.path.realpath(root)
                       for root in roots)
    except (OSError, ValueError):  # e.g. an embedded NUL: not a path inside anything
        return True


def read_table(path: str) -> tuple[list[str], list[dict]]:
    """(columns, rows as dicts) of a UTF-8 CSV file; a `Refusal` naming the file and line otherwise."""
    with open(path, newline="", encoding="utf-8") as stream:
        reader = csv.DictReader(stream)
        try:
            return list(reader.fieldnames or []), list(reader)
        except UnicodeDecodeError as error:
            raise Refusal(f"{path}: not UTF-8 text (byte {error.start}); save the table as UTF-8 CSV") from None
        except csv.Error as error:
            raise Refusal(f"{path}:{reader.line_num}: not a readable CSV row ({error})") from None


def ragged_row(row: dict, required: Sequence[str] = ()) -> str | None:
    """Why a `csv.DictReader` row does not line up with the header, or None.

    More non-empty fields than the header (key None) shift values into the wrong columns: always refused
    (empty trailing fields, from trailing commas, are not). Fewer fields leave None; refused when
    `required` names one of them (all columns when `required` is "*").
    """
    extra = [value for value in row.get(None) or () if value.strip()]
    if extra:
        return f"{len(extra)} more field(s) than the header (an unquoted comma?): the columns do not line up"
    short = [key for key, value in row.items() if value is None and (required == "*" or key in required)]
    if short:
        return f"fewer fields than the header (no {', '.join(short[:3])}{', ...' if len(short) > 3 else ''})"
    return None


def _is_ours(out_dir: str, entries: list[str]) -> bool:
    if all(_OWN_NAMES.fullmatch(name) for name in entries):
        return True
    try:
        with storage.open_file(os.path.join(out_dir, "manifest.json")) as stream:
            manifest = json.load(stream)
        return isinstance(manifest, dict) and "schema_version" in manifest and "splits" in manifest
    except (OSError, ValueError):
        return False


def _check_output(out_dir: str) -> None:
    if storage.exists(out_dir) and not storage.is_dir(out_dir):
        raise OutputExistsError(f"--out {out_dir} exists and is not a folder; choose a folder for the records")
    entries = sorted(storage.list_dir(out_dir)) if storage.is_dir(out_dir) else []
    if entries and not _is_ours(out_dir, entries):
        foreign = [name for name in entries if not _OWN_NAMES.fullmatch(name)]
        raise OutputExistsError(
            f"--out {out_dir} is not empty and was not written by tfxmed (it holds {len(foreign)} other entries, "
            f"e.g. '{foreign[0]}'); converters only write into a new or empty folder or one they wrote before, "
            "so choose another --out")


def _running_here(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # e.g. EPERM: the process exists under another user
        return True
    return True


def _locked_message(lock: str, out_dir: str) -> str:
    try:
        with storage.open_file(lock) as stream:
            pid_text, _, host = stream.read().strip().partition(" ")
        pid = int(pid_text)
    except (OSError, ValueError):
        pid, host = None, ""
    holder = f"pid {pid} on {host or 'an unknown host'}" if pid else "an unknown process"
    stale = ""
    if pid and host == socket.gethostname() and not _running_here(pid):
        stale = f" (pid {pid} is not running on this host: the lock is stale)"
    return (f"{lock} exists: another conversion ({holder}) is writing into {out_dir}. Wait for it to finish; if no "
            f"conversion is running{stale}, a killed one left the lock behind: delete {lock} and re-run the same "
            "command (it resumes)")


@contextlib.contextmanager
def claim_output(out_dir: str, writer: bool = False) -> Iterator[str]:
    """Refuses a folder tfxmed did not write, creates it, and holds its `.lock` for the block.

    A command claims the folder for the conversion and its `--smote` / `--tfds-metadata` steps; inside
    that claim, one writer at a time (`writer=True`, `DatasetWriter`) may claim it again. Any other
    second claim, from this process or another, is refused with `OutputLockedError`.
    """
    lock = os.path.join(out_dir, LOCK_NAME)
    lock = lock if storage.is_remote(lock) else os.path.realpath(lock)
    if lock in _writing:
        if not writer or _writing[lock]:
            raise OutputLockedError(_locked_message(lock, out_dir))
        _writing[lock] = True
        try:
            yield lock
        finally:
            _writing[lock] = False
        return
    _check_output(out_dir)
    created = not storage.is_dir(out_dir)
    storage.make_dirs(out_dir)
    content = f"{os.getpid()} {socket.gethostname()}\n"
    _take_lock(lock, out_dir, content, created)
    _writing[lock] = writer
    try:
        yield lock
    finally:
        del _writing[lock]
        with contextlib.suppress(OSError):
            with storage.open_file(lock) as stream:
                ours = stream.read() == content
            if ours:  # never remove a lock this process does not hold
                storage.remove(lock)
        _remove_if_empty(out_dir, created)  # a conversion refused at once leaves no empty folder behind


def _take_lock(lock: str, out_dir: str, content: str, created: bool) -> None:
    """Creates `lock` holding `content`, or refuses with `OutputLockedError` when it exists."""
    if storage.is_remote(lock):  # no exclusive create on object stores: see the module docstring
        if storage.exists(lock):
            raise OutputLockedError(_locked_message(lock, out_dir))
        storage.write_text_atomic(content, lock)
        return
    try:
        descriptor = os.open(lock, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    except FileExistsError:
        raise OutputLockedError(_locked_message(lock, out_dir)) from None
    except BaseException:
        _remove_if_empty(out_dir, created)
        raise
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as stream:
            stream.write(content)
    except BaseException:  # e.g. a full disk: leave no empty lock behind
        os.remove(lock)
        _remove_if_empty(out_dir, created)
        raise


def _remove_if_empty(out_dir: str, created: bool) -> None:
    if not created:
        return
    if storage.is_remote(out_dir):
        with contextlib.suppress(Exception):
            if not storage.list_dir(out_dir):
                storage.remove(out_dir)
        return
    with contextlib.suppress(OSError):
        os.rmdir(out_dir)  # fails, as it should, once anything was written into it


def is_disk_full(error: BaseException) -> bool:
    """Whether `error` says the device (or the user's quota) is full."""
    return isinstance(error, OSError) and error.errno in (errno.ENOSPC, errno.EDQUOT)

"""The secret salt for patient-id hashing: from the caller, $TFXMED_ID_SALT, or a per-dataset file."""

from __future__ import annotations

import os
import secrets

__all__ = ["resolve_salt", "SALT_FILE", "SALT_ENVIRONMENT_VARIABLE"]

SALT_FILE = ".id_salt"
SALT_ENVIRONMENT_VARIABLE = "TFXMED_ID_SALT"


def resolve_salt(out_dir: str, salt: str | None = None) -> str:
    """Returns the salt to hash patient ids with.

    Order: the explicit `salt`, then $TFXMED_ID_SALT, then `<out_dir>/.id_salt` (created with a random
    value and mode 0600 on first use, so a resumed conversion hashes ids the same way). The salt is
    never written into records, the manifest or logs.
    """
    if salt:
        return salt
    if os.environ.get(SALT_ENVIRONMENT_VARIABLE):
        return os.environ[SALT_ENVIRONMENT_VARIABLE]
    os.makedirs(out_dir, exist_ok=True)
    path = os.path.join(out_dir, SALT_FILE)
    if os.path.exists(path):
        with open(path, encoding="utf-8") as stream:
            return stream.read().strip()
    value = secrets.token_hex(16)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as stream:
        stream.write(value)
    return value

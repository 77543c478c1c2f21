"""The secret salt for patient-id hashing: from the caller, $TFXMED_ID_SALT, or a per-user secret file.

The default secret lives outside every dataset (`$XDG_CONFIG_HOME/tfxmed/id_salt`, else
`~/.config/tfxmed/id_salt`, or `$TFXMED_ID_SALT_FILE`), so copying or publishing a converted folder
does not ship the key that would let anyone re-hash candidate ids (e.g. enumerate MRNs) and match them.
One user's conversions share it, so the same patient hashes the same way across datasets.
"""

from __future__ import annotations

import os
import secrets

__all__ = ["resolve_salt", "salt_file", "SALT_ENVIRONMENT_VARIABLE", "SALT_FILE_ENVIRONMENT_VARIABLE"]

SALT_ENVIRONMENT_VARIABLE = "TFXMED_ID_SALT"
SALT_FILE_ENVIRONMENT_VARIABLE = "TFXMED_ID_SALT_FILE"


def salt_file() -> str:
    """Where the per-user secret is kept."""
    if os.environ.get(SALT_FILE_ENVIRONMENT_VARIABLE):
        return os.environ[SALT_FILE_ENVIRONMENT_VARIABLE]
    config = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    return os.path.join(config, "tfxmed", "id_salt")


def resolve_salt(salt: str | None = None) -> str:
    """Returns the salt to hash patient ids with.

    Order: the explicit `salt`, then $TFXMED_ID_SALT, then the per-user secret file (`salt_file()`,
    created with a random value and mode 0600 on first use). The salt is never written into records,
    manifests, journals or logs.
    """
    if salt:
        return salt
    if os.environ.get(SALT_ENVIRONMENT_VARIABLE):
        return os.environ[SALT_ENVIRONMENT_VARIABLE]
    path = salt_file()
    if os.path.exists(path):
        with open(path, encoding="utf-8") as stream:
            return stream.read().strip()
    os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another conversion created it a moment ago
        return resolve_salt()
    with os.fdopen(descriptor, "w", encoding="utf-8") as stream:
        stream.write(secrets.token_hex(16))
    return resolve_salt()

"""The exceptions tfxmed raises when it refuses an input or an action (commands print them as `error: ...`).

Every refusal names the file or field, what was received and what was expected; nothing is deleted
or overwritten on the way to it.
"""

from __future__ import annotations

__all__ = ["Refusal", "RunDirectoryError", "OutputExistsError"]


class Refusal(ValueError):
    """An input or an action tfxmed will not process, with a message saying why and what to do."""


class RunDirectoryError(Refusal):
    """A run directory that training may not write into (not tfxmed's, finished, or another config)."""


class OutputExistsError(Refusal):
    """An output path that exists and is not tfxmed's to replace."""

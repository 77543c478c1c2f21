"""Helpers of the reader-study tests (the `synthetic` study and the `study_run` fixtures are in tests/conftest.py)."""

from __future__ import annotations

import re

import pytest

FIELD = re.compile(r'name="(csrf|case|map|submission)" value="([^"]*)"')


def form_fields(page: bytes | str) -> dict:
    """The hidden fields of a rating page (csrf, case, map, submission)."""
    return dict(FIELD.findall(page.decode() if isinstance(page, bytes) else page))


@pytest.fixture(scope="session")
def built_study(tmp_path_factory, study_run) -> tuple[str, dict]:
    """(study database, create_study's summary): 8 cases of the tiny run's test split, the default methods."""
    from tfxmed.reader_study import create_study

    path = str(tmp_path_factory.mktemp("built_study") / "study.db")
    return path, create_study(study_run, path, cases=8)

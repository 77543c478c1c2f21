"""The patient-id salt (`tfrecords_tools.salt`): explicit, then $TFXMED_ID_SALT, then a per-user secret
file created once (mode 0600) outside every dataset."""

import os
import stat

import pytest

from tfrecords_tools.salt import resolve_salt, salt_file


@pytest.fixture
def home(tmp_path, monkeypatch):
    """No salt in the environment, and a private config folder."""
    monkeypatch.delenv("TFXMED_ID_SALT", raising=False)
    monkeypatch.delenv("TFXMED_ID_SALT_FILE", raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    return tmp_path


def test_explicit_then_environment_then_file(home, monkeypatch):
    monkeypatch.setenv("TFXMED_ID_SALT", "from-env")
    assert resolve_salt("given") == "given"
    assert resolve_salt() == "from-env"
    assert not os.path.exists(salt_file())  # the file is not created while another source answers
    monkeypatch.delenv("TFXMED_ID_SALT")
    assert resolve_salt("") == resolve_salt() == open(salt_file()).read().strip()  # "" is no salt


def test_the_secret_file_is_created_once_private_and_outside_the_dataset(home):
    path = salt_file()
    assert path == str(home / "config" / "tfxmed" / "id_salt")
    first = resolve_salt()
    assert len(first) == 32 and int(first, 16) >= 0  # 16 random bytes, hex
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(os.path.dirname(path)).st_mode) == 0o700
    assert resolve_salt() == first  # the same user's conversions share it
    os.remove(path)
    assert resolve_salt() != first  # a new secret, not a fixed default


def test_the_file_location_can_be_set(home, monkeypatch):
    chosen = home / "vault" / "salt"
    chosen.parent.mkdir()
    chosen.write_text("kept-elsewhere\n")
    monkeypatch.setenv("TFXMED_ID_SALT_FILE", str(chosen))
    assert salt_file() == str(chosen) and resolve_salt() == "kept-elsewhere"

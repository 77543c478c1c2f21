"""`python -m tfxmed study` (`tfxmed.commands.study`): create → add-reader → results in-process, and
refusals as `error: ...` with exit code 2."""

import json
import os

import pytest

from tfxmed.commands.study import main


def _output(capsys, argv) -> dict:
    assert main(argv) == 0
    return json.loads(capsys.readouterr().out)


def _refused(capsys, argv) -> str:
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    return capsys.readouterr().err


def test_create_add_reader_and_results(capsys, study_run, tmp_path):
    study = str(tmp_path / "study.db")
    created = _output(capsys, ["create", "--run", study_run, "--out", study, "--methods", "gradcam,ig", "--cases", "4"])
    assert created["cases"] == 4 and created["methods"] == ["gradcam", "ig"]
    reader = _output(capsys, ["add-reader", study, "Dr Ann", "--url", "http://127.0.0.1:8123"])
    assert reader["link"] == f"http://127.0.0.1:8123/login/{reader['token']}"
    assert "reader 'Dr Ann' exists; pass --reissue" in _refused(capsys, ["add-reader", study, "Dr Ann"])
    assert _output(capsys, ["add-reader", study, "Dr Ann", "--reissue"])["token"] != reader["token"]
    results = _output(capsys, ["results", study])
    assert results["ratings"] == 0 and os.path.exists(results["csv"])
    assert results["report_section"] == os.path.join(study_run, "eval", "reader_study.html")


def test_refusals(capsys, synthetic, tmp_path):
    assert "1–80 characters" in _refused(capsys, ["add-reader", synthetic, " "])
    assert "not found" in _refused(capsys, ["results", str(tmp_path / "none.db")])
    assert "not found" in _refused(capsys, ["serve", str(tmp_path / "none.db")])
    assert "unknown explanation method(s) ['gradcom']" in _refused(
        capsys, ["create", "--run", "x", "--out", "y", "--methods", "gradcam,gradcom"])
    assert "exists: choose a new study file" in _refused(capsys, ["create", "--run", "x", "--out", synthetic])

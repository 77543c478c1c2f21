"""The run directory: paths, claiming a folder for training (issue 20's 'never destroys anything')."""

import os

import pytest

from tests.helpers import TINY_CONFIG
from tfxmed.config import load_config
from tfxmed.errors import RunDirectoryError
from tfxmed.runs import RunPaths, claim_run_dir, write_run_info


def _config(run_dir, *overrides):
    return load_config(TINY_CONFIG, [f"runtime.run_dir={run_dir}", *overrides])


def _finished_run(run_dir, config):
    write_run_info(config, str(run_dir), {"data_dir": "nowhere"})
    paths = RunPaths(str(run_dir))
    os.makedirs(os.path.dirname(paths.best_checkpoint))
    open(paths.best_checkpoint, "w").close()
    open(paths.history, "w").write("epoch\n0\n")
    return paths


def test_new_and_empty_folders_are_claimed(tmp_path):
    assert claim_run_dir(str(tmp_path / "new"), _config(tmp_path / "new")) == "new"
    (tmp_path / "empty").mkdir()
    assert claim_run_dir(str(tmp_path / "empty"), _config(tmp_path / "empty")) == "new"


def test_a_folder_that_is_not_a_run_is_refused_and_kept_even_with_overwrite(tmp_path):
    """Regression (issue 20): a user's folder holding `backup/` lost it when training ended."""
    folder = tmp_path / "mine"
    (folder / "backup").mkdir(parents=True)
    (folder / "backup" / "thesis.tex").write_text("precious")
    for overwrite in (False, True):
        with pytest.raises(RunDirectoryError, match="not a tfxmed run"):
            claim_run_dir(str(folder), _config(folder), overwrite=overwrite)
    assert (folder / "backup" / "thesis.tex").read_text() == "precious"


def test_a_finished_run_or_another_config_needs_overwrite(tmp_path):
    """Regression (issue 20): re-running into a run dir kept the old best.keras and appended history."""
    run = tmp_path / "run"
    config = _config(run)
    paths = _finished_run(run, config)
    with pytest.raises(RunDirectoryError, match="finished run.*--overwrite"):
        claim_run_dir(str(run), config)
    with pytest.raises(RunDirectoryError, match="another configuration"):
        claim_run_dir(str(run), _config(run, "train.learning_rate=0.5"))
    (run / "my_notes.txt").write_text("mine")
    assert claim_run_dir(str(run), _config(run, "train.learning_rate=0.5"), overwrite=True) == "new"
    assert not any(os.path.exists(p) for p in (paths.config, paths.best_checkpoint, paths.history))
    assert (run / "my_notes.txt").read_text() == "mine"  # only tfxmed's artefacts are removed


def test_an_interrupted_run_of_the_same_config_resumes_wherever_it_runs(tmp_path):
    run = tmp_path / "run"
    config = _config(run)
    paths = _finished_run(run, config)
    os.makedirs(paths.backup)  # BackupAndRestore state: the run did not finish
    assert claim_run_dir(str(run), _config(run, "runtime.strategy=mirrored")) == "resume"
    with pytest.raises(RunDirectoryError, match="another configuration"):
        claim_run_dir(str(run), _config(run, "train.epochs=7"))

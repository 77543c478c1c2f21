"""`python -m tfxmed compare` (issue 14 §6): DeLong and McNemar against the reference on the same images,
Holm-adjusted; paired tests across groups of seeds; runs of other images refused."""

from __future__ import annotations

import json
import os
import shutil

import numpy as np
import pytest
from scipy import stats
from sklearn.metrics import roc_auc_score

from tfxmed.experiments import compare as compare_lib


def _scored(run, labels, scores, threshold=0.5):
    """What `scores_of` returns, for a binary model with positive-class `scores`."""
    probabilities = np.stack([1 - scores, scores], axis=1)
    return {"run": run, "labels": labels, "probabilities": probabilities, "class_names": ["normal", "lesion"],
            "multi_label": False, "auc": roc_auc_score(labels, scores),
            "accuracy": float(np.mean((scores >= threshold) == labels)), "correct": (scores >= threshold) == labels}


@pytest.fixture
def models(rng):
    """600 cases; a strong model, a weak one, the strong one again, and a strong one of other seeds."""
    labels = (np.arange(600) % 2).astype(int)
    signal = labels * 2.0 - 1.0
    strong = 1 / (1 + np.exp(-(2.0 * signal + rng.normal(0, 1.5, 600))))
    weak = 1 / (1 + np.exp(-(0.6 * signal + rng.normal(0, 1.5, 600))))
    return {"strong": _scored("runs/strong", labels, strong), "weak": _scored("runs/weak", labels, weak),
            "copy": _scored("runs/copy", labels, strong.copy())}


def test_holm_adjusts_step_down_and_keeps_the_order():
    assert compare_lib.holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    assert compare_lib.holm([0.5]) == [0.5]
    assert compare_lib.holm([0.4, 0.3]) == pytest.approx([0.6, 0.6])  # monotone, capped at 1 where needed


def test_each_run_is_tested_against_the_reference_on_the_same_images(models):
    result = compare_lib.compare(["runs/strong", "runs/weak", "runs/copy"], scorer=lambda run, split: models[
        os.path.basename(run)])
    assert result["reference"] == "runs/strong" and result["images"] == 600
    weak, copy = result["against_reference"]
    delong = weak["delong"]["lesion"]
    assert delong["difference"] < -0.1 and delong["p_value"] < 1e-6  # a real gap over 600 cases is found
    expected = compare_lib.delong_test(models["weak"]["labels"], models["weak"]["probabilities"][:, 1],
                                       models["strong"]["probabilities"][:, 1])
    assert delong["p_value"] == pytest.approx(expected["p_value"])
    assert weak["mcnemar"]["p_value"] < 0.01 and weak["mcnemar"]["only_b_correct"] > weak["mcnemar"]["only_a_correct"]
    # The same predictions: no difference, and nothing discordant.
    assert copy["delong"]["lesion"]["difference"] == 0.0 and copy["delong"]["lesion"]["p_value"] == 1.0
    assert copy["mcnemar"]["only_a_correct"] == copy["mcnemar"]["only_b_correct"] == 0
    # Holm over the two comparisons: the smaller p doubled, the larger kept (and never below it).
    assert delong["p_holm"] == pytest.approx(min(1.0, 2 * delong["p_value"]))
    assert copy["delong"]["lesion"]["p_holm"] == 1.0
    table = compare_lib.markdown(result)
    assert "| strong (reference) |" in table and "| weak |" in table and table.count("\n") == 7


def test_runs_of_the_same_folder_name_keep_apart_in_the_table():
    labels = compare_lib._labels(["runs/a/seed-0", "runs/b/seed-0", "runs/ens"])
    assert labels == {"runs/a/seed-0": "a/seed-0", "runs/b/seed-0": "b/seed-0", "runs/ens": "ens"}


def test_groups_of_seeds_get_paired_tests(models, rng):
    labels = models["strong"]["labels"]
    runs = {}
    for recipe, noise in (("a", 1.0), ("b", 2.5)):
        for seed in range(3):
            scores = 1 / (1 + np.exp(-(2.0 * (labels * 2.0 - 1) + rng.normal(0, noise, 600))))
            runs[f"runs/{recipe}{seed}"] = _scored(f"runs/{recipe}{seed}", labels, scores)
    groups = {"a": ["runs/a0", "runs/a1", "runs/a2"], "b": ["runs/b0", "runs/b1", "runs/b2"]}
    result = compare_lib.compare([], groups=groups, scorer=lambda run, split: runs[run])
    aucs = {name: [runs[run]["auc"] for run in members] for name, members in groups.items()}
    assert result["groups"]["a"]["auc"]["mean"] == pytest.approx(np.mean(aucs["a"]))
    paired = result["paired"]["b"]["auc"]
    assert paired["mean_difference"] == pytest.approx(np.mean(np.subtract(aucs["b"], aucs["a"])))
    assert paired["t_p_value"] == pytest.approx(stats.ttest_rel(aucs["b"], aucs["a"]).pvalue)
    assert "| b | 3 |" in compare_lib.markdown(result)
    with pytest.raises(ValueError, match="same size"):
        compare_lib.compare([], groups={"a": groups["a"], "b": groups["b"][:2]}, scorer=lambda run, split: runs[run])


def test_runs_scored_on_other_images_are_refused(models):
    other = _scored("runs/other", models["strong"]["labels"][:500], models["strong"]["probabilities"][:500, 1])
    scorer = {"runs/strong": models["strong"], "runs/other": other}
    with pytest.raises(ValueError, match="not scored on the same images"):
        compare_lib.compare(["runs/strong", "runs/other"], scorer=lambda run, split: scorer[run])
    with pytest.raises(ValueError, match="at least two runs"):
        compare_lib.compare(["runs/strong"], scorer=lambda run, split: scorer[run])


def test_the_command_scores_real_runs_as_evaluate_does(study_run, tmp_path, capsys):
    """Two saved runs (the tiny model, untrained, with different seeds) on the tiny dataset's test split."""
    import keras

    from tfxmed.commands.compare import main
    from tfxmed.evaluation import evaluate_run
    from tfxmed.models import build_model
    from tfxmed.runs import load_run

    first, second = str(tmp_path / "first"), str(tmp_path / "second")  # copies: evaluate writes into a run
    shutil.copytree(study_run, first)
    shutil.copytree(study_run, second)
    run = load_run(second)
    keras.utils.set_random_seed(1)
    build_model(run.config.model, (32, 32, 1), 2, False).save(run.paths.best_checkpoint)
    out = str(tmp_path / "compared")
    assert main([first, second, "--out", out]) == 0
    printed = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert printed == json.load(open(os.path.join(out, "compare.json")))
    for run_dir in (first, second):
        assert printed["runs"][run_dir]["auc"] == pytest.approx(evaluate_run(run_dir, "test")["classification"]["auc"])
    assert printed["images"] == 32 and "DeLong p" in open(os.path.join(out, "compare.md")).read()
    with pytest.raises(SystemExit):
        main([first, str(tmp_path / "missing"), "--out", out])
    assert "is 'PATH' a tfxmed run directory?".replace("PATH", str(tmp_path / "missing")) in capsys.readouterr().err

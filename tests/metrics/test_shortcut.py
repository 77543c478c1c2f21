import numpy as np
import pytest

from tfxmed.metrics.shortcut import DEFAULT_FLAG_THRESHOLD, choose_flag_threshold, flag_scores, region_mass


def test_region_mass_splits_positive_mass_without_double_counting():
    maps = np.array([[[4.0, 1.0], [-3.0, 5.0]]])  # positive mass 10
    cue = np.array([[[True, True], [False, False]]])
    lesion = np.array([[[False, True], [False, True]]])  # overlaps the cue at (0, 1): counted for the cue
    np.testing.assert_allclose(region_mass(maps, cue, lesion), [[0.5, 0.5, 0.0]])
    assert np.isnan(region_mass(np.zeros((1, 2, 2)), cue)).all()
    with pytest.raises(ValueError, match="pixels per image"):
        region_mass(maps, np.zeros((1, 3, 3), bool))


def test_flag_scores_against_known_truth():
    scores = flag_scores(np.array([1, 1, 0, 0, 1], bool), np.array([1, 0, 1, 0, 1], bool))
    assert scores["recall"] == pytest.approx(2 / 3) and scores["precision"] == pytest.approx(2 / 3)
    assert scores["f1"] == pytest.approx(2 / 3) and scores["flag_rate"] == pytest.approx(0.6)
    assert scores["false_alarm_rate"] == pytest.approx(1 / 2)  # one of the two images that are not driven
    none = flag_scores(np.zeros(3, bool), np.zeros(3, bool))
    assert none["recall"] is None and none["precision"] is None and none["flag_rate"] == 0.0


def test_threshold_separates_validation_and_falls_back_without_positives():
    masses = np.array([0.05, 0.1, 0.12, 0.6, 0.7, 0.9])
    truth = np.array([0, 0, 0, 1, 1, 1], bool)
    threshold, how = choose_flag_threshold(masses, truth)
    assert 0.12 < threshold < 0.6 and "F1" in how
    assert choose_flag_threshold(masses, np.zeros(6, bool)) == (DEFAULT_FLAG_THRESHOLD,
                                                               "default (validation has no shortcut-driven image)")


def test_the_threshold_keeps_false_alarms_within_budget_when_few_images_are_cue_driven():
    # 40 images whose decision ignores the cue (shares 0.00-0.39) and 10 driven ones that look like them:
    # best F1 alone flags everything (F1 1/3); the 5% budget allows 2 of the 40 above the threshold
    masses = np.concatenate([np.arange(40) / 100, np.arange(10) / 25 + 0.005])
    truth = np.arange(50) >= 40
    unbounded, _ = choose_flag_threshold(masses, truth, max_false_alarm=1.0)
    assert flag_scores(masses > unbounded, truth)["false_alarm_rate"] > 0.5
    threshold, how = choose_flag_threshold(masses, truth)
    assert flag_scores(masses > threshold, truth)["false_alarm_rate"] <= 0.05 and "5%" in how
    assert threshold >= 0.37

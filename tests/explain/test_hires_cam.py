"""HiResCAM on the hand-built model equals its formula computed independently in NumPy."""

import pytest

from tests.explain.references import check_cam_formula, combine
from tfxmed.explain import HiResCam


@pytest.mark.parametrize("target", [0, 1])
def test_hires_cam_matches_formula(target, hand_model, rng):
    check_cam_formula(HiResCam, lambda a, g: combine(g, a), hand_model, rng, target)

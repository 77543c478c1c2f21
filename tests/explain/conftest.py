"""Fixtures of the explainer tests (the helpers they use live in tests/explain/references.py)."""

import pytest

from tests.explain.references import hand_built_model


@pytest.fixture
def hand_model():
    """The hand-built model whose gradients are known in closed form (`references.hand_built_model`)."""
    return hand_built_model()
